// Command-line and channel helpers shared by the test clients in this folder.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

// Parses `argv` against `spec`: {name: 'string' | 'number' | 'flag' | 'list'} with names
// written as on the command line ('--url'). Returns {url: ..., ...} keyed without the
// dashes and camel-cased ('--timeout-ms' -> timeoutMs); throws on anything unknown.
export function parseArgs(argv, spec, defaults = {}) {
  const key = (name) => name.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  const opts = { ...defaults };
  for (const [name, kind] of Object.entries(spec)) {
    if (kind === 'list' && opts[key(name)] === undefined) opts[key(name)] = [];
  }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const kind = spec[name];
    if (kind === undefined) throw new Error(`unknown argument ${name}`);
    if (kind === 'flag') {
      opts[key(name)] = true;
      continue;
    }
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    const value = argv[++i];
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${name} wants a whole number`);
      opts[key(name)] = n;
    } else if (kind === 'list') {
      opts[key(name)].push(value);
    } else {
      opts[key(name)] = value;
    }
  }
  return opts;
}

// The TLS options every client takes: --ca FILE [--cert FILE --key FILE] | --insecure-h2c.
export const TLS_SPEC = { '--ca': 'string', '--cert': 'string', '--key': 'string',
  '--insecure-h2c': 'flag' };

// Channel credentials from the TLS options: TLS trusting --ca (the system roots when
// absent), with a client certificate for mTLS; or cleartext h2c.
export function channelCredentials(opts) {
  if (Boolean(opts.cert) !== Boolean(opts.key)) throw new Error('--cert and --key go together');
  if (opts.insecureH2c) {
    if (opts.ca || opts.cert) throw new Error('--insecure-h2c takes no TLS files');
    return grpc.credentials.createInsecure();
  }
  const read = (file) => (file ? readFileSync(file) : null);
  return grpc.credentials.createSsl(read(opts.ca), read(opts.key), read(opts.cert));
}

// gRPC metadata from NAME=VALUE strings.
export function metadataFrom(entries) {
  const metadata = new grpc.Metadata();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`wanted NAME=VALUE, got ${entry}`);
    metadata.add(entry.slice(0, eq).toLowerCase(), entry.slice(eq + 1));
  }
  return metadata;
}

// Runs `main` with the parsed options; a usage error exits 2, anything else 1.
export function runMain(name, usage, parse, main) {
  let opts;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${name}: ${err.message}\n${usage}`);
    process.exit(2);
  }
  Promise.resolve().then(() => main(opts)).catch((err) => {
    console.error(`${name}: ${err.stack ?? err}`);
    process.exit(1);
  });
}
