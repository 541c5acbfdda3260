import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config.ts';
import { createTelemetry, telemetryOptions } from '../telemetry/setup.ts';

/** The variables of README "Logs and traces": OpenTelemetry's standard ones, LOG_FORMAT, LOG_LEVEL and LOG_COLOR. */

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('telemetry and logging configuration', () => {
  it('sends spans to the flow console and prints pretty hop lines at info by default', () => {
    const config = loadConfig({});
    expect(config.telemetry).toEqual({ enabled: true, flowConsole: 'http://127.0.0.1:10054/v1/traces', collector: undefined });
    expect(config.logging).toEqual({ format: 'pretty', level: 'info', colour: 'auto' });
    expect(loadConfig({ FLOW_CONSOLE_PORT: '12345' }).telemetry.flowConsole).toBe('http://127.0.0.1:12345/v1/traces');
  });

  it('also sends them to the collector of OTEL_EXPORTER_OTLP_ENDPOINT, the console keeping its copy', () => {
    const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' });
    expect(config.telemetry.collector).toEqual({ url: 'http://127.0.0.1:4318/v1/traces', protocol: 'http/json' });
    expect(telemetryOptions(config, 'hr-agent').exportTo).toEqual(['http://127.0.0.1:10054/v1/traces', 'http://127.0.0.1:4318/v1/traces']);
  });

  it('takes a traces endpoint as it is, before the base endpoint', () => {
    const config = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector.example/otlp/traces',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    expect(config.telemetry.collector?.url).toBe('https://collector.example/otlp/traces');
  });

  it('refuses a protocol the installed exporter cannot speak, and an endpoint that is not an http(s) URL', () => {
    expect(problemsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })).toEqual([
      'OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf is not supported: the sandbox sends OTLP over HTTP with JSON bodies only; ' +
        'set it to http/json (every OpenTelemetry Collector, Jaeger and Tempo accept it on port 4318)',
    ]);
    expect(problemsOf({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })[0]).toMatch(/^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc is not supported/);
    expect(problemsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4317' })).toEqual([
      'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL without credentials, such as http://127.0.0.1:4318 (got "localhost:4317/v1/traces")',
    ]);
    expect(problemsOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://user:pw@collector.example/v1/traces' })[0]).toMatch(
      /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http\(s\) URL without credentials/,
    );
  });

  it('sends no span anywhere with OTEL_SDK_DISABLED=true, and records nothing once logs are silent too', () => {
    const disabled = loadConfig({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
    expect(disabled.telemetry.enabled).toBe(false);
    expect(telemetryOptions(disabled, 'hr-api').exportTo).toEqual([]);
    expect(telemetryOptions(disabled, 'hr-api').logging).toBeDefined();

    const silent = loadConfig({ OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'silent' });
    const telemetry = createTelemetry(telemetryOptions(silent, 'hr-api'));
    expect(telemetry.logger).toBeUndefined();
    const span = telemetry.tracer.startSpan('anything');
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(problemsOf({ OTEL_SDK_DISABLED: 'yes' })).toEqual(['OTEL_SDK_DISABLED must be one of true, false (got "yes")']);
  });

  it('reads LOG_FORMAT, LOG_LEVEL and LOG_COLOR, naming a wrong value', () => {
    expect(loadConfig({ LOG_FORMAT: 'json', LOG_LEVEL: 'warn', LOG_COLOR: 'false' }).logging).toEqual({
      format: 'json',
      level: 'warn',
      colour: false,
    });
    expect(problemsOf({ LOG_FORMAT: 'xml', LOG_LEVEL: 'loud', LOG_COLOR: 'yes' })).toEqual([
      'LOG_FORMAT must be one of pretty, json (got "xml")',
      'LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent (got "loud")',
      'LOG_COLOR must be one of auto, true, false (got "yes")',
    ]);
  });

  it('colours pretty lines on a terminal only, as NO_COLOR and LOG_COLOR say otherwise', () => {
    const auto = loadConfig({});
    expect(telemetryOptions(auto, 'tenant', { isTerminal: true }).logging?.colour).toBe(true);
    expect(telemetryOptions(auto, 'tenant', { isTerminal: false }).logging?.colour).toBe(false);
    // `npm run sandbox` on a terminal passes LOG_COLOR=true to its services, whose output is a pipe.
    expect(telemetryOptions(loadConfig({ LOG_COLOR: 'true' }), 'tenant', { isTerminal: false }).logging?.colour).toBe(true);
    expect(loadConfig({ NO_COLOR: '1' }).logging.colour).toBe(false);
    expect(loadConfig({ NO_COLOR: '1', LOG_COLOR: 'true' }).logging.colour).toBe(true);
  });
});
