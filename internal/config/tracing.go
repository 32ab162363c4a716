package config

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/dromos-dev/dromos/internal/tracing"
)

// TracingVars documents the OpenTelemetry variables both services read
// (for --help). They are the standard OTEL_* ones.
const TracingVars = `  OTEL_EXPORTER_OTLP_ENDPOINT         OTLP/HTTP collector base URL; traces go to …/v1/traces (unset: tracing off)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full traces URL (replaces the above)
  OTEL_EXPORTER_OTLP_HEADERS          key=value,… sent with every export (…_TRACES_HEADERS wins)
  OTEL_EXPORTER_OTLP_PROTOCOL         http/protobuf (the only one supported; …_TRACES_PROTOCOL too)
  OTEL_SERVICE_NAME                   service.name (default dromos-broker / dromos-gateway)
  OTEL_RESOURCE_ATTRIBUTES            key=value,… more resource attributes
  OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG  sampler (default parentbased_always_on) and its ratio
  OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER       true / none turn tracing off
`

// tracing reads the standard OpenTelemetry variables. Header values are
// often collector credentials: problems name the variable, never a value.
func (r reader) tracing() tracing.Config {
	var c tracing.Config
	if r.boolean("OTEL_SDK_DISABLED", false) {
		return c
	}
	switch exp := r.str("OTEL_TRACES_EXPORTER", "otlp"); exp {
	case "otlp":
	case "none":
		return c
	default:
		r.errs.add("OTEL_TRACES_EXPORTER must be otlp or none")
		return c
	}
	endpoint := r.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	key := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if endpoint == "" {
		if base := r.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""); base != "" {
			endpoint, key = strings.TrimSuffix(base, "/")+"/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"
		}
	}
	if endpoint == "" {
		return c
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.errs.add("%s must be an http(s) URL", key)
		return c
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := r.str(k, ""); p != "" && p != "http/protobuf" {
			r.errs.add("%s must be http/protobuf (the only OTLP protocol Dromos exports with)", k)
		}
	}
	c.Endpoint = endpoint
	hk := "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	if !r.isSet(hk) {
		hk = "OTEL_EXPORTER_OTLP_HEADERS"
	}
	c.Headers = r.keyValues(hk)
	c.ResourceAttributes = r.keyValues("OTEL_RESOURCE_ATTRIBUTES")
	c.ServiceName = r.str("OTEL_SERVICE_NAME", "")
	c.Sampler = r.str("OTEL_TRACES_SAMPLER", tracing.SamplerParentBasedAlwaysOn)
	switch c.Sampler {
	case tracing.SamplerAlwaysOn, tracing.SamplerAlwaysOff, tracing.SamplerParentBasedAlwaysOn, tracing.SamplerParentBasedAlwaysOff:
	case tracing.SamplerTraceIDRatio, tracing.SamplerParentBasedTraceIDRatio:
		c.SamplerArg = 1
		if v := r.str("OTEL_TRACES_SAMPLER_ARG", ""); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				r.errs.add("OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1")
			}
			c.SamplerArg = f
		}
	default:
		r.errs.add("OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio")
	}
	return c
}

// keyValues reads the W3C-baggage-like "k=v,k2=v2" form the OTEL_*
// variables use, values URL-decoded.
func (r reader) keyValues(key string) map[string]string {
	entries := r.list(key)
	if len(entries) == 0 {
		return nil
	}
	out := make(map[string]string, len(entries))
	for i, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			r.errs.add("%s entry %d must be key=value", key, i+1)
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = dv
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
