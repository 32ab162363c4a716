package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Samplers accepted in Config.Sampler (the OTEL_TRACES_SAMPLER values).
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Config is the tracing configuration, from the OTEL_* variables.
type Config struct {
	// Endpoint is the full OTLP/HTTP traces URL (…/v1/traces); "" turns
	// tracing off.
	Endpoint string
	// Headers are sent with every export (often a collector's credential:
	// never logged).
	Headers map[string]string
	// ServiceName is the service.name resource attribute; "" takes the
	// name the process passes to New.
	ServiceName string
	// Sampler is one of the Sampler… names ("" = parentbased_always_on);
	// SamplerArg the ratio for the traceidratio ones.
	Sampler    string
	SamplerArg float64
	// ResourceAttributes are more resource attributes
	// (OTEL_RESOURCE_ATTRIBUTES).
	ResourceAttributes map[string]string
}

// Options are what the process adds to Config.
type Options struct {
	// ServiceName is used when Config.ServiceName is empty.
	ServiceName string
	// Version is the service.version resource attribute.
	Version string
	// Exporter replaces the OTLP exporter and turns tracing on whatever
	// Config.Endpoint says; spans are handed to it synchronously as they
	// end. For tests (sdk/trace/tracetest's in-memory exporter).
	Exporter sdktrace.SpanExporter
}

// Tracing is the process's tracer provider. The zero value and a nil
// *Tracing are off. It is safe for concurrent use.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
	prop     propagation.TextMapPropagator
}

// InstrumentationName is the tracer name Dromos's spans are created under.
const InstrumentationName = "github.com/dromos-dev/dromos"

// New builds the tracer provider: exporting over OTLP/HTTP to
// cfg.Endpoint, to opts.Exporter, or (neither) nowhere.
func New(ctx context.Context, cfg Config, opts Options) (*Tracing, error) {
	var exp sdktrace.SpanExporter
	var syncExport bool
	switch {
	case opts.Exporter != nil:
		exp, syncExport = opts.Exporter, true
	case cfg.Endpoint != "":
		e, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint), otlptracehttp.WithHeaders(cfg.Headers))
		if err != nil {
			// The endpoint URL was checked by config; headers never appear.
			return nil, errors.New("tracing: cannot build the OTLP exporter for OTEL_EXPORTER_OTLP_ENDPOINT")
		}
		exp = e
	default:
		return &Tracing{}, nil
	}
	sampler, err := newSampler(cfg.Sampler, cfg.SamplerArg)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = opts.ServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if opts.Version != "" {
		attrs = append(attrs, attribute.String("service.version", opts.Version))
	}
	for k, v := range cfg.ResourceAttributes {
		if k != "service.name" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	po := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	}
	if syncExport {
		po = append(po, sdktrace.WithSyncer(exp))
	} else {
		po = append(po, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(po...)
	return &Tracing{provider: tp, sdk: tp, prop: propagation.TraceContext{}}, nil
}

func newSampler(name string, arg float64) (sdktrace.Sampler, error) {
	switch name {
	case "", SamplerParentBasedAlwaysOn:
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case SamplerAlwaysOn:
		return sdktrace.AlwaysSample(), nil
	case SamplerAlwaysOff:
		return sdktrace.NeverSample(), nil
	case SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(arg), nil
	case SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(arg)), nil
	}
	return nil, fmt.Errorf("tracing: unknown sampler %q", name)
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.sdk != nil }

// Tracer is the tracer Dromos's packages create spans with; a no-op one
// when tracing is off.
func (t *Tracing) Tracer() trace.Tracer {
	if !t.Enabled() {
		return noop.NewTracerProvider().Tracer(InstrumentationName)
	}
	return t.provider.Tracer(InstrumentationName)
}

// Shutdown exports the spans still buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}
