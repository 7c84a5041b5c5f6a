import { expect } from 'chai';
import { BbyError, formatAddress, isLoopbackHost, isValidPort, isWildcardHost, parseAddress } from '../src/index.js';

function addressError(text: string): BbyError {
  try {
    parseAddress(text);
  } catch (error) {
    expect(error).to.be.instanceOf(BbyError);
    expect((error as BbyError).code).to.equal('BAD_ADDRESS');
    return error as BbyError;
  }
  throw new Error(`parseAddress(${JSON.stringify(text)}) did not throw`);
}

describe('peer addresses', () => {
  it('parses host:port into host, port, normalized address and ws URL', () => {
    expect(parseAddress('127.0.0.1:7002')).to.deep.equal({ host: '127.0.0.1', port: 7002, address: '127.0.0.1:7002', url: 'ws://127.0.0.1:7002' });
    expect(parseAddress('node-2.local:80')).to.deep.equal({ host: 'node-2.local', port: 80, address: 'node-2.local:80', url: 'ws://node-2.local:80' });
  });

  it('accepts ws:// URLs, any case, with or without a trailing slash, and surrounding spaces', () => {
    for (const text of ['ws://localhost:7003', 'WS://localhost:7003/', '  ws://localhost:7003  ', 'localhost:7003']) {
      expect(parseAddress(text).address, text).to.equal('localhost:7003');
    }
  });

  it('accepts bracketed IPv6 hosts and keeps the brackets in the address only', () => {
    expect(parseAddress('[::1]:7004')).to.deep.equal({ host: '::1', port: 7004, address: '[::1]:7004', url: 'ws://[::1]:7004' });
    expect(parseAddress('ws://[fe80::1]:9/').address).to.equal('[fe80::1]:9');
  });

  it('refuses other schemes and names the one it got', () => {
    expect(addressError('http://localhost:7000').message).to.include('only ws:// and wss:// are supported, not http://');
    addressError('https://localhost:7000');
  });

  it('accepts wss:// and keeps the address only: the config\'s "tls" decides the scheme', () => {
    expect(parseAddress('wss://10.0.0.2:7002/')).to.deep.equal({ host: '10.0.0.2', port: 7002, address: '10.0.0.2:7002', url: 'ws://10.0.0.2:7002' });
  });

  it('refuses a missing port', () => {
    expect(addressError('localhost').message).to.include('the port is missing');
    expect(addressError(':7000').message).to.include('the port is missing');
    addressError('localhost:');
  });

  it('refuses ports outside 1 to 65535 or not made of digits', () => {
    for (const text of ['localhost:0', 'localhost:65536', 'localhost:-1', 'localhost:7e3', 'localhost:70.5', 'localhost:abc']) {
      expect(addressError(text).message, text).to.include('the port must be from 1 to 65535');
    }
    expect(parseAddress('localhost:65535').port).to.equal(65535);
    expect(parseAddress('localhost:1').port).to.equal(1);
  });

  it('asks for brackets around an IPv6 host', () => {
    expect(addressError('::1:7000').message).to.include('put an IPv6 host in brackets');
  });

  it('refuses empty text and hosts with odd characters, with an example of the right form', () => {
    const empty = addressError('   ');
    expect(empty.message).to.include('it is empty').and.include('127.0.0.1:7002');
    expect(addressError('bad host:7000').message).to.include('is not a host name or IP address');
    addressError('a/b:7000');
  });

  it('formats host and port, bracketing IPv6 hosts', () => {
    expect(formatAddress('127.0.0.1', 7001)).to.equal('127.0.0.1:7001');
    expect(formatAddress('::1', 7001)).to.equal('[::1]:7001');
  });

  it('knows a valid port', () => {
    expect([1, 80, 65535].map(isValidPort)).to.deep.equal([true, true, true]);
    expect([0, 65536, 1.5, -1, NaN, '80', null].map(isValidPort)).to.deep.equal([false, false, false, false, false, false, false]);
  });

  it('knows loopback hosts in every spelling, and nothing else', () => {
    for (const host of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '0::1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
      expect(isLoopbackHost(host), host).to.equal(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '127.0.0', '127.0.0.256', 'localhost.example', 'my-localhost', '::2', '1::1', '::ffff:10.0.0.1', 'fe80::1', '']) {
      expect(isLoopbackHost(host), host).to.equal(false);
    }
  });

  it('knows the wildcard hosts, which nobody can dial', () => {
    for (const host of ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '::0', '::ffff:0.0.0.0']) expect(isWildcardHost(host), host).to.equal(true);
    for (const host of ['127.0.0.1', '::1', '10.0.0.0', 'node', '0.0.0.1', '1::']) expect(isWildcardHost(host), host).to.equal(false);
  });
});
