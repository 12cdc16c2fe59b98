import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as Http from '@opentelemetry/instrumentation-http';
import type * as Pg from '@opentelemetry/instrumentation-pg';
import type * as Undici from '@opentelemetry/instrumentation-undici';
import type * as SdkNode from '@opentelemetry/sdk-node';
import type { NodeSDK } from '@opentelemetry/sdk-node';

/**
 * OpenTelemetry tracing, off by default: set OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) to export spans over OTLP/HTTP — incoming API requests,
 * outgoing HTTP attempts (undici) and PostgreSQL queries. The standard OTEL_* variables
 * (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, headers …) apply. bin/punctual.ts imports this module
 * first, so the instrumentations patch their modules before anything loads them.
 */

let sdk: NodeSDK | undefined;

function start(role: string): NodeSDK {
  // Only traces: metrics are Prometheus (/metrics), logs are pino on stdout.
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  process.env.OTEL_SERVICE_NAME ??= `punctual-${role}`;
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only when tracing is on */
  const { NodeSDK: Sdk } = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp;
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof Http;
  const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici') as typeof Undici;
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof Pg;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const instance = new Sdk({
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [new HttpInstrumentation(), new UndiciInstrumentation(), new PgInstrumentation()],
  });
  instance.start();
  return instance;
}

function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Flushes pending spans; call before the process exits. */
export async function shutdownTracing(): Promise<void> {
  await sdk?.shutdown().catch(() => undefined);
}

if (tracingEnabled()) sdk = start(process.argv[2] ?? 'all');
