package chart

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint runs `helm lint`'s own linter on every value set: a
// warning or error fails (informational notes such as "icon is
// recommended" do not).
func TestChartLint(t *testing.T) {
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := lint.All(chartDir, readValues(t, c.values), namespace, false)
			for _, msg := range res.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", msg)
				}
			}
		})
	}
}

// TestChartRefusesWhatTheProcessesWould renders value sets the chart must
// refuse, each with the message that tells the operator what to set.
func TestChartRefusesWhatTheProcessesWould(t *testing.T) {
	base := func() map[string]any { return readValues(t, "minimal.yaml") }
	for name, c := range map[string]struct {
		edit func(v map[string]any)
		want string
	}{
		"defaults alone: no public URL": {func(v map[string]any) { clear(v) }, "broker.baseURL is required"},
		"no database": {func(v map[string]any) {
			delete(v["secrets"].(map[string]any), "databaseURL")
		}, "secrets.databaseURL is required"},
		"plain http in production": {func(v map[string]any) {
			v["broker"].(map[string]any)["baseURL"] = "http://broker.example.com"
		}, "must be https://"},
		"production without return domains": {func(v map[string]any) {
			delete(v["broker"].(map[string]any), "allowedReturnDomains")
		}, "broker.allowedReturnDomains is required"},
		"unknown mode": {func(v map[string]any) { v["mode"] = "both" }, `mode must be split or serve, not "both"`},
	} {
		t.Run(name, func(t *testing.T) {
			v := base()
			c.edit(v)
			_, err := renderChart(t, v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render error = %v, want one saying %q", err, c.want)
			}
		})
	}
	// The same values with the edit undone render: the refusals above
	// come from the edits, not from something else in minimal.yaml.
	if _, err := renderChart(t, base()); err != nil {
		t.Fatalf("minimal.yaml does not render: %v", err)
	}
}
