package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/tracing"
)

func TestTracingFromOTELVariables(t *testing.T) {
	for name, c := range map[string]struct {
		env  Env
		want tracing.Config
	}{
		"unset: off": {Env{}, tracing.Config{}},
		"base endpoint gets /v1/traces": {Env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
			tracing.Config{Endpoint: "http://collector:4318/v1/traces", Sampler: "parentbased_always_on"}},
		"traces endpoint wins, headers, service, ratio": {Env{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://ignored:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example.com/v1/traces",
			"OTEL_EXPORTER_OTLP_HEADERS":         "authorization=Bearer%20abc,x-team=id",
			"OTEL_SERVICE_NAME":                  "broker-eu",
			"OTEL_RESOURCE_ATTRIBUTES":           "deployment.environment=prod",
			"OTEL_TRACES_SAMPLER":                "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
		}, tracing.Config{Endpoint: "https://otlp.example.com/v1/traces",
			Headers:     map[string]string{"authorization": "Bearer abc", "x-team": "id"},
			ServiceName: "broker-eu", ResourceAttributes: map[string]string{"deployment.environment": "prod"},
			Sampler: "parentbased_traceidratio", SamplerArg: 0.25}},
		"sdk disabled":  {Env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, tracing.Config{}},
		"exporter none": {Env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, tracing.Config{}},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := LoadGateway(Env{"BROKER_BASE_URL": "http://b:8080", "STATE_KEY": key32, "GATEWAY_ALLOW_ANONYMOUS": "true"}.with(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Tracing, c.want) {
				t.Fatalf("tracing = %+v, want %+v", g.Tracing, c.want)
			}
		})
	}
}

func TestTracingProblemsNameTheVariableNotTheValue(t *testing.T) {
	_, err := LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b,
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":         "authorization",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
		"OTEL_TRACES_SAMPLER":                "sometimes",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
	})
	if err == nil {
		t.Fatal("bad OTEL_EXPORTER_OTLP_ENDPOINT accepted")
	}
	if !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL") {
		t.Errorf("error = %v", err)
	}
	_, err = LoadBroker(Env{"ENCRYPTION_KEY": key32, "STATE_KEY": key32b,
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20topsecret,broken",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_TRACES_SAMPLER":         "sometimes",
	})
	for _, want := range []string{"OTEL_EXPORTER_OTLP_HEADERS entry 2 must be key=value", "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf", "OTEL_TRACES_SAMPLER must be"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error quotes a header value: %v", err)
	}
}

func (e Env) with(more Env) Env {
	out := Env{}
	for k, v := range e {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}
