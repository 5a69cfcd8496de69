/**
 * Text that containers and builds wrote, made safe to print on a person's terminal. An app
 * must not drive the operator's terminal through `quarry logs` or a push's `remote:` lines
 * (recolour it, move the cursor over earlier lines, retitle the window, write to the
 * clipboard by OSC 52), so every control character is shown escaped instead of acted on:
 * `ESC [31m` prints as the text `\x1b[31m`. Kept as they are: tab and newline, and a CRLF
 * line end (read as a newline; a lone carriage return, which could overwrite a line, is shown).
 *
 * Escaped: C0 controls but tab and newline (U+0000–U+001F), DEL (U+007F) and the C1 controls
 * (U+0080–U+009F, among them the one-character CSI U+009B). Escaping ESC alone neutralises
 * every ESC sequence: what follows it is printable.
 */
export function terminalSafe(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
