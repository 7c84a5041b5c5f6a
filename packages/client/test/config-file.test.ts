/**
 * readConfigFile: the secret files a config names (read relative to the
 * config file, one secret per line), the warnings about files other users
 * can read, and TLS paths made absolute.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@bby/core';
import { expect } from 'chai';
import { readConfigFile } from '../src/config-file.js';

const SECRET = '0123456789abcdef0123456789abcdef';
const OLD_SECRET = 'fedcba9876543210fedcba9876543210';

describe('readConfigFile', () => {
  let dir: string;
  let configPath: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-config-'));
    await mkdir(join(dir, 'conf'));
    configPath = join(dir, 'conf', 'node1.json');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string, mode = 0o600): Promise<string> {
    const path = join(dir, 'conf', name);
    await writeFile(path, text);
    await chmod(path, mode);
    return path;
  }

  async function read(fields: Record<string, unknown>): Promise<{ config: Awaited<ReturnType<typeof readConfigFile>>; warnings: string[] }> {
    await writeFile(configPath, JSON.stringify({ port: 7001, ...fields }));
    const warnings: string[] = [];
    const config = await readConfigFile(configPath, { onWarning: (message) => warnings.push(message) });
    return { config, warnings };
  }

  async function readError(fields: Record<string, unknown>): Promise<string> {
    try {
      await read(fields);
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message.includes('\n'), message).to.equal(false);
      expect(message.startsWith(`${configPath}: `), message).to.equal(true);
      return message;
    }
    throw new Error('readConfigFile did not throw');
  }

  it('reads the secrets of secretFile and clientSecretFile, relative to the config file, comments and blanks skipped', async () => {
    const file = await write('mesh.secret', `# rotation: the new one first\n${SECRET}\n\n${OLD_SECRET}   \n`);
    await write('client.secret', `${OLD_SECRET}\n`);
    const { config, warnings } = await read({ secretFile: 'mesh.secret', clientSecretFile: './client.secret' });
    expect(config.secrets).to.deep.equal([SECRET, OLD_SECRET]);
    expect(config.clientSecrets).to.deep.equal([OLD_SECRET]);
    expect(config.secretFile).to.equal(file);
    expect(config.clientSecretFile).to.equal(join(dir, 'conf', 'client.secret'));
    expect(warnings).to.deep.equal([]);
  });

  it('a missing, empty or weak secret file is an error naming the field, the file and the fix', async () => {
    const missing = await readError({ secretFile: 'nope.secret' });
    expect(missing).to.include(`"secretFile" ${join(dir, 'conf', 'nope.secret')}: no such file`).and.include('openssl rand -hex 32 >');
    await write('empty.secret', '\n# nothing yet\n');
    expect(await readError({ clientSecretFile: 'empty.secret' })).to.include('"clientSecretFile"').and.include('holds no secret');
    await write('weak.secret', 'password\n');
    const weak = await readError({ secretFile: 'weak.secret' });
    expect(weak).to.include('line 1 is 8 characters').and.not.include('password');
    await mkdir(join(dir, 'conf', 'folder.secret'));
    expect(await readError({ secretFile: 'folder.secret' })).to.include('is a folder');
  });

  it('warns, in one line naming the file and chmod 600, about a secret file others can read', async () => {
    const file = await write('mesh.secret', `${SECRET}\n`, 0o644);
    const { config, warnings } = await read({ secretFile: 'mesh.secret' });
    expect(config.secrets).to.deep.equal([SECRET]);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.equal(`${file} is readable by other users (mode 644) and it holds the secret of "secretFile" in ${configPath}; make it private: chmod 600 ${file}`);
    await chmod(file, 0o640);
    expect((await read({ secretFile: 'mesh.secret' })).warnings[0]).to.include('(mode 640)');
  });

  it('makes TLS paths absolute and warns about a private key others can read', async () => {
    const key = await write('node1-key.pem', 'not checked here\n', 0o644);
    const { config, warnings } = await read({ tls: { cert: 'node1.pem', key: 'node1-key.pem', ca: '../ca.pem' } });
    expect(config.tls).to.deep.equal({ cert: join(dir, 'conf', 'node1.pem'), key, ca: join(dir, 'ca.pem') });
    expect(warnings).to.deep.equal([`${key} is readable by other users (mode 644) and it is the private key of "tls"."key" in ${configPath}; make it private: chmod 600 ${key}`]);
  });

  it('leaves a missing TLS file to the transport (bby needs only "ca")', async () => {
    const { config, warnings } = await read({ tls: { cert: 'absent.pem', key: 'absent-key.pem' } });
    expect(config.tls?.key).to.equal(join(dir, 'conf', 'absent-key.pem'));
    expect(warnings).to.deep.equal([]);
  });

  it('keeps a config without secrets or TLS exactly as parsed', async () => {
    const { config } = await read({ peers: ['127.0.0.1:7002'] });
    expect(config.secrets).to.deep.equal([]);
    expect(config).not.to.have.property('tls');
    expect(config).not.to.have.property('secretFile');
  });
});
