/**
 * How a config connects: `ws` or `wss`, and the TLS options of every
 * connection it dials (`bby`'s to its node, a node's to its peers). Also the
 * checks of a config's TLS files that the server side shares (bby-node's
 * transport.ts): each failure is one line naming the field and the fix.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type NodeConfig } from '@bby/core';

/** `ws` or `wss`: the scheme a node with this config listens with and dials with. */
export type UrlScheme = 'ws' | 'wss';

/** The TLS options a client or a dialing node gives `new WebSocket(url, options)`; empty without "tls". */
export interface ClientTlsOptions {
  /** The authority the other side's certificate must be signed by; the system's authorities when absent. */
  readonly ca?: Buffer;
  /** Always true: a certificate that does not check out, or names another host, fails the connection. */
  readonly rejectUnauthorized?: true;
}

/** A field of "tls" that names a file. */
export type TlsFileField = 'cert' | 'key' | 'ca';

/** The scheme a node with this config listens with and dials with: `wss` with "tls" (a cert to listen with), else `ws`. */
export function urlScheme(config: NodeConfig): UrlScheme {
  return config.tls === undefined ? 'ws' : 'wss';
}

/**
 * TLS options for every connection this config dials (a node's peers, `bby`'s
 * node). Node's TLS, through ws, checks the certificate against `ca` and
 * against the dialed host: an IP address must be in the certificate's IP
 * subjectAltNames, a name in its DNS names. Reads the "ca" file (synchronous,
 * small): call once and reuse the result for every dial. Throws ConfigError
 * naming the field and the fix when "ca" cannot be read or is not PEM.
 */
export function clientTlsOptions(config: NodeConfig, source = 'the config'): ClientTlsOptions {
  if (config.tls === undefined) return {};
  if (config.tls.ca === undefined) return { rejectUnauthorized: true };
  let ca: Buffer;
  try {
    ca = readFileSync(config.tls.ca);
  } catch (error) {
    throw new ConfigError(tlsFileError('ca', config.tls.ca, source, error as NodeJS.ErrnoException));
  }
  checkCertificatePem('ca', config.tls.ca, source, ca);
  return { ca, rejectUnauthorized: true };
}

/** Checks that a cert or ca file holds a PEM certificate; returns the first one. Throws ConfigError naming the field and the fix. */
export function checkCertificatePem(field: 'cert' | 'ca', file: string, source: string, pem: Buffer): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(`${source}: "tls".${JSON.stringify(field)} ${file} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----"); give the ${field === 'ca' ? 'ca.pem' : 'NAME.pem'} file made by scripts/make-certs.sh`);
  }
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new ConfigError(`${source}: "tls".${JSON.stringify(field)} ${file} holds a damaged certificate (${(error as Error).message}); make it again with scripts/make-certs.sh`);
  }
}

/** One line for a TLS file of the config that cannot be read, naming the fix. */
export function tlsFileError(field: TlsFileField, file: string, source: string, error: NodeJS.ErrnoException): string {
  const where = `${source}: "tls".${JSON.stringify(field)} ${file}`;
  if (error.code === 'ENOENT') return `${where}: no such file (paths are relative to the config file); make the files with scripts/make-certs.sh (docs/security.md)`;
  if (error.code === 'EACCES') return `${where}: permission denied; make it readable by the user running bby${field === 'key' ? ' (and nobody else: chmod 600)' : ''}`;
  if (error.code === 'EISDIR') return `${where} is a folder; give the path of a PEM file`;
  return `${where}: cannot read it (${error.code ?? error.message})`;
}
