/**
 * The cloud-init `user_data` of a new droplet: docker from Debian's packages, the quarry
 * key for root, and the agent as a systemd unit. The unit runs the agent's image with
 * `Restart=always`, so it starts by itself once HQ has streamed that image into the server's
 * engine (`docker load`), and comes back after a reboot or a resize.
 */
export interface CloudInitOptions {
  /** `TYPE BASE64 COMMENT` */
  publicKey: string;
  agentImage: string;
  /** The agent's `--config` URL; without one the agent runs on its defaults. */
  agentConfig?: string | undefined;
}

/** A YAML double-quoted scalar: safe for any text. */
function quoted(text: string): string {
  return JSON.stringify(text);
}

export function cloudInit(options: CloudInitOptions): string {
  if (/[\r\n]/.test(options.publicKey)) throw new Error('the public key must be one line');
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
  return [
    '#cloud-config',
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
