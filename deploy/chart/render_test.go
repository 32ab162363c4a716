package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "../helm/dromos"
	release   = "rel"
	namespace = "dromos-test"
)

// manifests is one rendering, every object decoded into its API type.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	ingresses       map[string]*networkingv1.Ingress
	netpols         map[string]*networkingv1.NetworkPolicy
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	jobs            map[string]*batchv1.Job
	objects         []string // "Kind/name", sorted
}

// apiVersions is the one apiVersion the chart may use for each kind.
var apiVersions = map[string]string{
	"Deployment": "apps/v1", "Service": "v1", "Secret": "v1", "ServiceAccount": "v1",
	"Ingress": "networking.k8s.io/v1", "NetworkPolicy": "networking.k8s.io/v1",
	"PodDisruptionBudget": "policy/v1", "HorizontalPodAutoscaler": "autoscaling/v2", "Job": "batch/v1",
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return ch
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := chartutil.ReadValues(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// renderChart renders the chart as `helm upgrade --install` would (hooks
// included), in strict mode: a reference to a value that does not exist
// is an error, not an empty string.
func renderChart(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	rv, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1},
		chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true, LintMode: false}.Render(ch, rv)
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode splits every rendered template into documents and decodes each
// strictly (unknown or duplicate fields fail) into its k8s.io/api type.
func decode(t *testing.T, files map[string]string) manifests {
	t.Helper()
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		secrets: map[string]*corev1.Secret{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		ingresses: map[string]*networkingv1.Ingress{}, netpols: map[string]*networkingv1.NetworkPolicy{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		jobs: map[string]*batchv1.Job{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, file := range names {
		if !strings.HasSuffix(file, ".yaml") {
			continue // NOTES.txt, helpers
		}
		for i, doc := range docSep.Split(files[file], -1) {
			if isBlank(doc) {
				continue
			}
			where := fmt.Sprintf("%s document %d", file, i)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", where, err, doc)
			}
			if want, ok := apiVersions[head.Kind]; !ok {
				t.Fatalf("%s: kind %q is not one the chart should render", where, head.Kind)
			} else if head.APIVersion != want {
				t.Fatalf("%s: %s has apiVersion %q, want %q", where, head.Kind, head.APIVersion, want)
			}
			var obj any
			switch head.Kind {
			case "Deployment":
				obj = put(m.deployments, head.Metadata.Name)
			case "Service":
				obj = put(m.services, head.Metadata.Name)
			case "Secret":
				obj = put(m.secrets, head.Metadata.Name)
			case "ServiceAccount":
				obj = put(m.serviceAccounts, head.Metadata.Name)
			case "Ingress":
				obj = put(m.ingresses, head.Metadata.Name)
			case "NetworkPolicy":
				obj = put(m.netpols, head.Metadata.Name)
			case "PodDisruptionBudget":
				obj = put(m.pdbs, head.Metadata.Name)
			case "HorizontalPodAutoscaler":
				obj = put(m.hpas, head.Metadata.Name)
			case "Job":
				obj = put(m.jobs, head.Metadata.Name)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s (%s %s) does not decode strictly into its API type: %v\n%s", where, head.Kind, head.Metadata.Name, err, doc)
			}
			key := head.Kind + "/" + head.Metadata.Name
			if slices.Contains(m.objects, key) {
				t.Fatalf("%s: %s rendered twice", where, key)
			}
			m.objects = append(m.objects, key)
		}
	}
	sort.Strings(m.objects)
	return m
}

// put makes a new *T under name and returns it for decoding into.
func put[T any](into map[string]*T, name string) *T {
	v := new(T)
	into[name] = v
	return v
}

func isBlank(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
