import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onProcessCleanup } from './processes';

/** A certificate and its key, as files (PEM). */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A throw-away CA in a temporary directory; removed when the test process ends. */
export interface TestPki {
  dir: string;
  /** The CA certificate (PEM file). */
  ca: string;
  /**
   * Issues a certificate signed by the CA for `name`, valid for the given IP and DNS
   * subject alternative names, usable as server and client certificate.
   */
  issue(name: string, san?: { ips?: string[]; dns?: string[] }): CertFiles;
  /** Removes the directory now. */
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Makes a CA with `openssl` (EC P-256, valid one day) in a fresh temporary directory. */
export function makeTestPki(label = 'pki'): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `peerbroker-${label}-`));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  onProcessCleanup(cleanup);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', `/CN=peerbroker test CA ${label}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  let serial = 1;
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    issue(name, san = {}) {
      const names = [...(san.ips ?? []).map((ip) => `IP:${ip}`), ...(san.dns ?? []).map((d) => `DNS:${d}`)];
      const ext = [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
        ...(names.length > 0 ? [`subjectAltName=${names.join(',')}`] : []),
      ].join('\n');
      fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
      openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(
        [
          'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial++),
          '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`,
        ],
        dir,
      );
      return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
    },
    cleanup,
  };
}

/** Writes `content` to a new file (mode 0600) in a fresh temporary directory; removed at exit. */
export function secretFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-secret-'));
  onProcessCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}
