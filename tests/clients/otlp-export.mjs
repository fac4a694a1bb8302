#!/usr/bin/env node
// Exports one span, one metric and one log record with the real, unmodified OTLP/gRPC
// exporters of OpenTelemetry JS, as an application's SDK would, to the URL given: over
// TLS (--ca, and --cert/--key for mTLS) or cleartext h2c (--insecure-h2c). Prints one
// JSON line per signal and exits 0 only if all three exports succeeded.
//
//   node otlp-export.mjs --url https://127.0.0.1:8200 --ca ca.crt [--cert c.crt --key c.key]
//   node otlp-export.mjs --url http://127.0.0.1:8201 --insecure-h2c
//
// More options: --timeout-ms N (per export, default 10000), --header NAME=VALUE (gRPC
// metadata on every call; repeatable), --service-name NAME.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import {
  TLS_SPEC, channelCredentials, metadataFrom, parseArgs, runMain,
} from './cli.mjs';

const USAGE = 'usage: otlp-export.mjs --url URL (--ca FILE [--cert FILE --key FILE] | --insecure-h2c)'
  + ' [--timeout-ms N] [--header NAME=VALUE]... [--service-name NAME]';

function parse(argv) {
  const opts = parseArgs(argv, {
    '--url': 'string', ...TLS_SPEC, '--timeout-ms': 'number', '--header': 'list',
    '--service-name': 'string',
  }, { timeoutMs: 10000, serviceName: 'otlp-export-test' });
  if (!opts.url) throw new Error('--url is required');
  if (opts.timeoutMs <= 0) throw new Error('--timeout-ms must be positive');
  channelCredentials(opts);  // checks the TLS and metadata options now, as usage errors
  metadataFrom(opts.header);
  return opts;
}

// Telemetry made by the SDKs themselves, so the exporters see what an application sends.
async function makeTelemetry(resource) {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({
    resource, spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
  });
  const span = tracerProvider.getTracer('otlp-export').startSpan('otlp-export-span');
  span.setAttribute('test.attribute', 'through the proxy');
  span.end();
  await tracerProvider.forceFlush();  // the processor hands spans on asynchronously

  // A reader that collects only when asked: the exporter is then called by us, once.
  class OnDemandReader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
  }
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ resource, readers: [reader] });
  meterProvider.getMeter('otlp-export').createCounter('otlp_export_test_total').add(1);
  const { resourceMetrics } = await reader.collect();

  const logs = new InMemoryLogRecordExporter();
  const loggerProvider = new LoggerProvider({
    resource, processors: [new SimpleLogRecordProcessor({ exporter: logs })],
  });
  loggerProvider.getLogger('otlp-export').emit({ severityText: 'INFO', body: 'otlp-export log' });
  await loggerProvider.forceFlush();

  const telemetry = {
    traces: spans.getFinishedSpans(),
    metrics: resourceMetrics,
    logs: logs.getFinishedLogRecords(),
  };
  // An empty export would "succeed" without proving anything.
  const counts = {
    traces: telemetry.traces.length,
    metrics: resourceMetrics.scopeMetrics.reduce((n, s) => n + s.metrics.length, 0),
    logs: telemetry.logs.length,
  };
  for (const [signal, n] of Object.entries(counts)) {
    if (n !== 1) throw new Error(`the SDK made ${n} ${signal} items, not 1`);
  }
  return telemetry;
}

// One export through `exporter`; resolves to the JSON line to print.
function exportOnce(signal, exporter, items, timeoutMs) {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ signal, ok: false, error: 'no result in time' }),
      timeoutMs + 2000);
    exporter.export(items, (result) => {
      clearTimeout(timer);
      const line = { signal, ok: result.code === 0, ms: Date.now() - started };
      if (result.error) {
        line.error = String(result.error.message ?? result.error);
        if (result.error.code !== undefined) line.grpc_code = result.error.code;
      }
      resolve(line);
    });
  });
}

async function main(opts) {
  const config = () => ({
    url: opts.url,
    credentials: channelCredentials(opts),
    metadata: metadataFrom(opts.header),
    timeoutMillis: opts.timeoutMs,
  });
  const resource = resourceFromAttributes({ 'service.name': opts.serviceName });
  const telemetry = await makeTelemetry(resource);
  const exporters = {
    traces: new OTLPTraceExporter(config()),
    metrics: new OTLPMetricExporter(config()),
    logs: new OTLPLogExporter(config()),
  };
  let ok = true;
  for (const signal of ['traces', 'metrics', 'logs']) {
    const line = await exportOnce(signal, exporters[signal], telemetry[signal], opts.timeoutMs);
    console.log(JSON.stringify(line));
    ok = ok && line.ok;
  }
  await Promise.race([
    Promise.allSettled(Object.values(exporters).map((e) => e.shutdown())),
    new Promise((resolve) => setTimeout(resolve, 2000)),
  ]);
  process.exit(ok ? 0 : 1);
}

runMain('otlp-export', USAGE, parse, main);
