import { PacificError } from './errors.js';

/**
 * The cloud-init `user_data` of a new droplet: docker from Debian's packages, the quarry
 * key for root, the server's SSH host key, and the agent as a systemd unit. The unit runs the
 * agent's image with `Restart=always`, so it starts by itself once HQ has streamed that image
 * into the server's engine (`docker load`), and comes back after a reboot or a resize.
 *
 * The host key goes the way cloud-init's SSH module (cc_ssh) documents: `ssh_keys` with
 * `ed25519_private` and `ed25519_public`, `ssh_deletekeys: true` (the image's own keys go) and
 * `ssh_genkeytypes: []` (no other type is made), so the server's sshd shows that key alone.
 */
export interface CloudInitOptions {
  /** `TYPE BASE64 COMMENT` */
  publicKey: string;
  agentImage: string;
  /** The agent's `--config` URL; without one the agent runs on its defaults. */
  agentConfig?: string | undefined;
  /** The server's ed25519 host key, made by quarry and pinned: OpenSSH private text and `ssh-ed25519 BASE64 COMMENT`. */
  hostKey?: { privateKey: string; publicKey: string } | undefined;
}

/** A YAML double-quoted scalar: safe for any text. */
function quoted(text: string): string {
  return JSON.stringify(text);
}

export function cloudInit(options: CloudInitOptions): string {
  if (/[\r\n]/.test(options.publicKey)) throw new PacificError('cloud-init: the quarry public key must be one line');
  const hostKey = options.hostKey;
  if (hostKey) {
    if (!/^ssh-ed25519 [A-Za-z0-9+/]+=*( [^\r\n]*)?$/.test(hostKey.publicKey.trim())) {
      throw new PacificError('cloud-init: the host key\'s public half must be one line `ssh-ed25519 BASE64 [COMMENT]`');
    }
    if (!/^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n?$/.test(hostKey.privateKey)) {
      throw new PacificError('cloud-init: the host key\'s private half must be an unencrypted OpenSSH private key');
    }
  }
  const agentArgs = ['agent', ...(options.agentConfig ? ['--config', options.agentConfig] : [])];
  const run = [
    '/usr/bin/docker run --rm --name quarry-agent --network host',
    '-v /var/run/docker.sock:/var/run/docker.sock',
    shellQuote(options.agentImage),
    ...agentArgs.map(shellQuote),
  ].join(' ');
  const unit = [
    '[Unit]',
    'Description=quarry agent (the caretaker of this server)',
    'After=docker.service',
    'Requires=docker.service',
    '',
    '[Service]',
    'ExecStartPre=-/usr/bin/docker rm -f quarry-agent',
    `ExecStart=${run}`,
    'Restart=always',
    'RestartSec=5',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  const hostKeys = hostKey ? [
    'ssh_deletekeys: true',
    'ssh_genkeytypes: []',
    'ssh_keys:',
    `  ed25519_private: ${quoted(hostKey.privateKey.endsWith('\n') ? hostKey.privateKey : `${hostKey.privateKey}\n`)}`,
    `  ed25519_public: ${quoted(hostKey.publicKey.trim())}`,
  ] : [];
  return [
    '#cloud-config',
    ...hostKeys,
    'package_update: true',
    'packages:',
    '  - docker.io',
    '  - iptables',
    'write_files:',
    '  - path: /root/.ssh/authorized_keys',
    '    permissions: "0600"',
    '    append: true',
    `    content: ${quoted(`${options.publicKey}\n`)}`,
    '  - path: /etc/systemd/system/quarry-agent.service',
    '    permissions: "0644"',
    `    content: ${quoted(unit)}`,
    'runcmd:',
    '  - [systemctl, enable, --now, docker]',
    '  - [systemctl, daemon-reload]',
    '  - [systemctl, enable, --now, quarry-agent]',
    '',
  ].join('\n');
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
