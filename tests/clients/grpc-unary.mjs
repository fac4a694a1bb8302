#!/usr/bin/env node
// One raw gRPC unary call with @grpc/grpc-js, bytes in and bytes out (no protobuf), for
// tests of what passes through: the status code, message and trailers a server sent, and
// large messages both ways. Prints one JSON line:
//   {"code":0,"details":"","response_bytes":5,"trailers":{"grpc-status":"0"},"ms":12}
//
//   node grpc-unary.mjs --url http://127.0.0.1:8201 --insecure-h2c --path /pkg.Svc/Method
//   node grpc-unary.mjs --url https://127.0.0.1:8200 --ca ca.crt [--cert c.crt --key c.key] ...
//
// More options: --message-size N (request bytes, default 0), --metadata NAME=VALUE
// (repeatable), --timeout-ms N (deadline, default 10000), --expect-code N (exit 1 unless
// the call ended with this status; without it, exit 0 whenever a status arrived).
import * as grpc from '@grpc/grpc-js';
import {
  TLS_SPEC, channelCredentials, metadataFrom, parseArgs, runMain,
} from './cli.mjs';

const USAGE = 'usage: grpc-unary.mjs --url URL --path /pkg.Service/Method'
  + ' (--ca FILE [--cert FILE --key FILE] | --insecure-h2c) [--message-size N]'
  + ' [--metadata NAME=VALUE]... [--timeout-ms N] [--expect-code N]';

function parse(argv) {
  const opts = parseArgs(argv, {
    '--url': 'string', '--path': 'string', ...TLS_SPEC, '--message-size': 'number',
    '--metadata': 'list', '--timeout-ms': 'number', '--expect-code': 'number',
  }, { messageSize: 0, timeoutMs: 10000 });
  if (!opts.url || !opts.path) throw new Error('--url and --path are required');
  channelCredentials(opts);  // checks the TLS and metadata options now, as usage errors
  metadataFrom(opts.metadata);
  return opts;
}

function main(opts) {
  // Responses may be as large as requests (16 MiB tests): lift grpc-js's 4 MiB default.
  const client = new grpc.Client(new URL(opts.url).host, channelCredentials(opts), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  const identity = (buffer) => buffer;
  const started = Date.now();
  let responseBytes = null;
  const call = client.makeUnaryRequest(opts.path, identity, identity,
    Buffer.alloc(opts.messageSize, 'x'), metadataFrom(opts.metadata),
    { deadline: new Date(Date.now() + opts.timeoutMs) },
    (err, response) => {
      if (!err) responseBytes = response.length;
    });
  // 'status' carries the code and the trailers whether the call succeeded or not, and
  // comes after the unary callback.
  call.on('status', (status) => {
    const line = {
      code: status.code,
      details: status.details,
      response_bytes: responseBytes,
      trailers: status.metadata.getMap(),
      ms: Date.now() - started,
    };
    console.log(JSON.stringify(line));
    client.close();
    const ok = opts.expectCode === undefined || opts.expectCode === status.code;
    process.exit(ok ? 0 : 1);
  });
}

runMain('grpc-unary', USAGE, parse, main);
