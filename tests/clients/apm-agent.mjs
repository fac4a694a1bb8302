#!/usr/bin/env node
// Sends one transaction (with a span) and one error through the real, unmodified Elastic
// APM Node.js agent (elastic-apm-node), configured as docs/agents.md tells users to:
// serverUrl and serverCaCertFile. The agent first asks the server for its version
// (GET /), then streams its events (POST /intake/v2/events, gzip, chunked). Prints one
// JSON line and exits 0 only if the agent flushed and reported no transport error.
//
//   node apm-agent.mjs --url https://127.0.0.1:8200 --ca ca.crt [--timeout-ms N]
import { createRequire } from 'node:module';
import { parseArgs, runMain } from './cli.mjs';

const USAGE = 'usage: apm-agent.mjs --url URL --ca FILE [--timeout-ms N] [--service-name NAME]';

// The agent reports what went wrong with its server only through its logger.
function recordingLogger(problems) {
  const keep = (level) => (...args) => {
    const text = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string'
      ? a : JSON.stringify(a))).join(' ');
    problems.push(`${level}: ${text}`);
  };
  const ignore = () => {};
  const logger = {
    trace: ignore, debug: ignore, info: ignore, warn: keep('warn'), error: keep('error'),
    fatal: keep('fatal'),
  };
  logger.child = () => logger;
  return logger;
}

function parse(argv) {
  const opts = parseArgs(argv, {
    '--url': 'string', '--ca': 'string', '--timeout-ms': 'number', '--service-name': 'string',
  }, { timeoutMs: 10000, serviceName: 'apm-agent-test' });
  if (!opts.url || !opts.ca) throw new Error('--url and --ca are required');
  if (opts.timeoutMs <= 0) throw new Error('--timeout-ms must be positive');
  return opts;
}

async function main(opts) {
  const problems = [];
  const require = createRequire(import.meta.url);
  const apm = require('elastic-apm-node');
  const started = Date.now();
  apm.start({
    serviceName: opts.serviceName,
    serverUrl: opts.url,
    serverCaCertFile: opts.ca,
    logger: recordingLogger(problems),
    logLevel: 'warn',
    centralConfig: false,
    metricsInterval: '0s',
    cloudProvider: 'none',
    captureExceptions: false,
    instrument: false,
    serverTimeout: `${Math.ceil(opts.timeoutMs / 1000)}s`,
  });
  const transaction = apm.startTransaction('GET /checkout', 'request');
  const span = apm.startSpan('SELECT FROM orders', 'db');
  span.end();
  apm.captureError(new Error('payment declined (test)'));
  transaction.result = 'HTTP 2xx';
  transaction.end();
  const flushed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), opts.timeoutMs);
    apm.flush(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  const ok = flushed && problems.length === 0;
  process.stdout.write(`${JSON.stringify({ ok, flushed, ms: Date.now() - started, problems })}\n`);
  await apm.destroy();
  process.exit(ok ? 0 : 1);
}

runMain('apm-agent', USAGE, parse, main);
