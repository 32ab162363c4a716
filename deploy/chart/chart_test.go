package chart

import (
	"encoding/base64"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The chart's object names for release "rel".
const (
	full    = "rel-dromos"
	broker  = full + "-broker"
	gateway = full + "-gateway"
	serve   = full + "-serve"
	migrate = full + "-migrate"
)

// secretKeys are the keys every Secret the chart reads must hold.
var secretKeys = []string{"BROKER_API_KEY", "DATABASE_URL", "ENCRYPTION_KEYS", "GATEWAY_API_KEYS", "STATE_KEYS"}

type chartCase struct {
	values  string
	objects []string // every object the rendering must hold, and nothing else
	secret  string   // the Secret the pods read
	// component → args, container ports (name:number), readiness path
	args      map[string][]string
	ports     map[string][]string
	readyPath map[string]string
	// ingress host and paths ("" host: no Ingress)
	host          string
	ingressPaths  []string
	serviceTarget map[string]string // Service → Deployment it selects
	env           map[string]map[string]string
}

var cases = map[string]chartCase{
	"defaults": {
		values: "minimal.yaml",
		objects: []string{
			"Deployment/" + broker, "Deployment/" + gateway,
			"Ingress/" + broker, "Job/" + migrate,
			"NetworkPolicy/" + broker, "NetworkPolicy/" + gateway, "NetworkPolicy/" + migrate,
			"PodDisruptionBudget/" + broker, "PodDisruptionBudget/" + gateway,
			"Secret/" + full, "Service/" + broker, "Service/" + gateway, "ServiceAccount/" + full,
		},
		secret:        full,
		args:          map[string][]string{broker: {"broker"}, gateway: {"gateway"}},
		ports:         map[string][]string{broker: {"http:8080"}, gateway: {"http:8090", "grpc:9090"}},
		readyPath:     map[string]string{broker: "/ready", gateway: "/health"},
		host:          "broker.example.com",
		ingressPaths:  []string{"/auth/start/", "/auth/callback", "/mcp/client-metadata.json"},
		serviceTarget: map[string]string{broker: broker, gateway: gateway},
		env: map[string]map[string]string{
			broker: {"DROMOS_ENV": "production", "BASE_URL": "https://broker.example.com", "PORT": "8080",
				"ENFORCE_RETURN_URL": "true", "ALLOWED_RETURN_DOMAINS": "app.example.com"},
			gateway: {"DROMOS_ENV": "production", "BROKER_BASE_URL": "http://" + broker + ":8080", "PORT": "8090", "PORT_GRPC": "9090"},
		},
	},
	"serve": {
		values: "serve.yaml",
		objects: []string{
			"Deployment/" + serve, "HorizontalPodAutoscaler/" + serve,
			"Ingress/" + broker, "Job/" + migrate,
			"NetworkPolicy/" + migrate, "NetworkPolicy/" + serve,
			"PodDisruptionBudget/" + serve,
			"Service/" + broker, "Service/" + gateway, "ServiceAccount/" + full,
		},
		secret:        "dromos-keys",
		args:          map[string][]string{serve: {"serve"}},
		ports:         map[string][]string{serve: {"http:8080", "gateway-http:8090", "grpc:9090"}},
		readyPath:     map[string]string{serve: "/ready"},
		host:          "connect.example.com",
		ingressPaths:  []string{"/auth/start/", "/auth/callback", "/mcp/client-metadata.json"},
		serviceTarget: map[string]string{broker: serve, gateway: serve},
		env: map[string]map[string]string{
			serve: {"DROMOS_ENV": "production", "BASE_URL": "https://connect.example.com", "TRUSTED_PROXIES": "10.1.0.0/16",
				"ALLOWED_RETURN_DOMAINS": "app.example.com,*.tools.example.com", "GATEWAY_RATE_LIMIT": "50",
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318", "OTEL_SERVICE_NAME": "dromos-serve",
				"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"},
		},
	},
	"split-custom": {
		values: "split-custom.yaml",
		objects: []string{
			"Deployment/" + broker, "Deployment/" + gateway,
			"HorizontalPodAutoscaler/" + broker, "HorizontalPodAutoscaler/" + gateway,
			"PodDisruptionBudget/" + gateway,
			"Secret/" + full, "Service/" + broker, "Service/" + gateway,
		},
		secret:        full,
		args:          map[string][]string{broker: {"broker"}, gateway: {"gateway"}},
		ports:         map[string][]string{broker: {"http:8000"}, gateway: {"http:8001", "grpc:9001"}},
		readyPath:     map[string]string{broker: "/ready", gateway: "/health"},
		serviceTarget: map[string]string{broker: broker, gateway: gateway},
		env: map[string]map[string]string{
			broker:  {"BASE_URL": "http://dromos.test", "REDIRECT_PATH": "/oauth/return", "PORT": "8000", "LOG_LEVEL": "debug", "RATE_LIMIT_CALLBACK": "100"},
			gateway: {"BROKER_BASE_URL": "http://" + broker + ":8000", "PORT": "8001", "PORT_GRPC": "9001"},
		},
	},
}

func TestChartRendersEveryManifestStrictly(t *testing.T) {
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			files, err := renderChart(t, readValues(t, c.values))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			m := decode(t, files)
			want := slices.Sorted(slices.Values(c.objects))
			if !slices.Equal(m.objects, want) {
				t.Fatalf("rendered objects:\n  %v\nwant:\n  %v", m.objects, want)
			}
			for name, d := range m.deployments {
				checkPod(t, "Deployment "+name, d.Spec.Template.Spec, c.secret)
				checkDeployment(t, c, name, d)
			}
			for name, j := range m.jobs {
				checkPod(t, "Job "+name, j.Spec.Template.Spec, c.secret)
				if hook := j.Annotations["helm.sh/hook"]; hook != "pre-upgrade" {
					t.Errorf("Job %s hook = %q, want pre-upgrade", name, hook)
				}
				if args := j.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"migrate"}) {
					t.Errorf("Job %s args = %v, want [migrate]", name, args)
				}
				if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
					t.Errorf("Job %s restartPolicy = %q", name, j.Spec.Template.Spec.RestartPolicy)
				}
			}
			checkSecrets(t, c, m)
			checkServices(t, c, m)
			checkIngress(t, c, m)
			checkSelectors(t, m)
			checkNetworkPolicies(t, m)
		})
	}
}

// checkPod holds what every pod of the chart must do: the image's user,
// a read-only root, no privilege escalation, no capabilities, requests
// set, secrets only from the release's Secret.
func checkPod(t *testing.T, what string, spec corev1.PodSpec, secret string) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("%s: pod securityContext must run as non-root uid 65532: %+v", what, psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token it never uses", what)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: container has no securityContext", what)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: root file system is not read-only", what)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation allowed", what)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities %+v, want drop [ALL]", what, sc.Capabilities)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no cpu and memory requests: %v", what, c.Resources.Requests)
	}
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("%s: env %s set twice", what, e.Name)
		}
		seen[e.Name] = true
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret || !slices.Contains(secretKeys, ref.Key) {
				t.Errorf("%s: env %s reads %s/%s, want a key of Secret %s", what, e.Name, ref.Name, ref.Key, secret)
			}
		}
		for _, k := range secretKeys {
			if e.Name == k && e.ValueFrom == nil {
				t.Errorf("%s: %s given as a plain value, not from the Secret", what, k)
			}
		}
	}
}

func checkDeployment(t *testing.T, c chartCase, name string, d *appsv1.Deployment) {
	t.Helper()
	ctr := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(ctr.Args, c.args[name]) {
		t.Errorf("%s args = %v, want %v", name, ctr.Args, c.args[name])
	}
	var ports []string
	for _, p := range ctr.Ports {
		ports = append(ports, p.Name+":"+strconv.Itoa(int(p.ContainerPort)))
	}
	if !slices.Equal(ports, c.ports[name]) {
		t.Errorf("%s ports = %v, want %v", name, ports, c.ports[name])
	}
	for probe, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {ctr.LivenessProbe, "/health"}, "readiness": {ctr.ReadinessProbe, c.readyPath[name]}, "startup": {ctr.StartupProbe, "/health"}} {
		if want.p == nil || want.p.HTTPGet == nil || want.p.HTTPGet.Path != want.path || want.p.HTTPGet.Port.StrVal != ctr.Ports[0].Name {
			t.Errorf("%s %s probe = %+v, want GET %s on port %s", name, probe, want.p, want.path, ctr.Ports[0].Name)
		}
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	for k, v := range c.env[name] {
		if env[k] != v {
			t.Errorf("%s env %s = %q, want %q", name, k, env[k], v)
		}
	}
	if !slices.ContainsFunc(ctr.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == "/tmp" }) {
		t.Errorf("%s: no writable /tmp beside the read-only root", name)
	}
}

func checkSecrets(t *testing.T, c chartCase, m manifests) {
	t.Helper()
	s, ok := m.secrets[c.secret]
	if !ok {
		if len(m.secrets) > 0 {
			t.Errorf("Secrets %v rendered while pods read the existing %s", slices.Collect(maps.Keys(m.secrets)), c.secret)
		}
		return
	}
	if got := slices.Sorted(maps.Keys(s.StringData)); !slices.Equal(got, secretKeys) {
		t.Errorf("Secret %s keys = %v, want %v", c.secret, got, secretKeys)
	}
	if s.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("Secret %s would be deleted on uninstall, and the keys to every stored token with it", c.secret)
	}
	for _, k := range []string{"ENCRYPTION_KEYS", "STATE_KEYS"} {
		for _, entry := range strings.Split(s.StringData[k], ",") {
			if i := strings.Index(entry, ":"); i >= 0 {
				entry = entry[i+1:]
			}
			if b, err := base64.StdEncoding.DecodeString(entry); err != nil || len(b) != 32 {
				t.Errorf("Secret %s: %s entry is not base64 of 32 bytes", c.secret, k)
			}
		}
	}
	if len(s.StringData["BROKER_API_KEY"]) < 16 {
		t.Errorf("Secret %s: BROKER_API_KEY shorter than the broker accepts", c.secret)
	}
}

func checkServices(t *testing.T, c chartCase, m manifests) {
	t.Helper()
	for svc, target := range c.serviceTarget {
		s := m.services[svc]
		if s == nil {
			t.Errorf("no Service %s", svc)
			continue
		}
		if s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s; only the Ingress is public", svc, s.Spec.Type)
		}
		for name, d := range m.deployments {
			selects := labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
			if selects != (name == target) {
				t.Errorf("Service %s selects Deployment %s: %v, want %v", svc, name, selects, name == target)
			}
		}
		d := m.deployments[target]
		if d == nil {
			continue
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
				return cp.Name == p.TargetPort.StrVal
			}) {
				t.Errorf("Service %s port %s targets %q, which Deployment %s does not name", svc, p.Name, p.TargetPort.StrVal, target)
			}
		}
	}
}

func checkIngress(t *testing.T, c chartCase, m manifests) {
	t.Helper()
	if c.host == "" {
		if len(m.ingresses) > 0 {
			t.Errorf("Ingress rendered with ingress.enabled false")
		}
		return
	}
	ing := m.ingresses[broker]
	if ing == nil || len(ing.Spec.Rules) != 1 {
		t.Fatalf("want one Ingress %s with one rule, got %+v", broker, ing)
	}
	rule := ing.Spec.Rules[0]
	if rule.Host != c.host {
		t.Errorf("Ingress host = %q, want %q", rule.Host, c.host)
	}
	var paths []string
	for _, p := range rule.HTTP.Paths {
		paths = append(paths, p.Path)
		if p.Backend.Service == nil || p.Backend.Service.Name != broker || p.Backend.Service.Port.Name != "http" {
			t.Errorf("Ingress path %s goes to %+v; only the broker's public port may be exposed", p.Path, p.Backend)
		}
		if p.Path == "/" || (p.PathType != nil && *p.PathType == networkingv1.PathTypePrefix && p.Path != "/auth/start/") {
			t.Errorf("Ingress path %s (%v) exposes more than the public routes", p.Path, *p.PathType)
		}
	}
	if !slices.Equal(paths, c.ingressPaths) {
		t.Errorf("Ingress paths = %v, want %v", paths, c.ingressPaths)
	}
}

// checkSelectors: every PDB, HPA and NetworkPolicy aims at an object the
// release runs.
func checkSelectors(t *testing.T, m manifests) {
	t.Helper()
	for name, p := range m.pdbs {
		if matched(t, p.Spec.Selector.MatchLabels, m) != name {
			t.Errorf("PodDisruptionBudget %s does not select exactly its own Deployment", name)
		}
	}
	for name, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != name || m.deployments[name] == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %+v, not its Deployment", name, ref)
		}
		if d := m.deployments[name]; d != nil && d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas beside its HorizontalPodAutoscaler: every upgrade would reset the scale", name)
		}
	}
}

// matched is the name of the only Deployment or Job whose pods sel
// selects ("" for none or several).
func matched(t *testing.T, sel map[string]string, m manifests) string {
	t.Helper()
	s := labels.SelectorFromSet(sel)
	var hit []string
	for name, d := range m.deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			hit = append(hit, name)
		}
	}
	for name, j := range m.jobs {
		if s.Matches(labels.Set(j.Spec.Template.Labels)) {
			hit = append(hit, name)
		}
	}
	if len(hit) != 1 {
		return ""
	}
	return hit[0]
}

func checkNetworkPolicies(t *testing.T, m manifests) {
	t.Helper()
	if len(m.netpols) == 0 {
		return
	}
	covered := map[string]bool{}
	for name, np := range m.netpols {
		target := matched(t, np.Spec.PodSelector.MatchLabels, m)
		if target != name {
			t.Errorf("NetworkPolicy %s selects %q, want its own workload", name, target)
		}
		covered[target] = true
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{"Ingress", "Egress"}) {
			t.Errorf("NetworkPolicy %s policyTypes = %v: both directions must be closed by default", name, np.Spec.PolicyTypes)
		}
		for _, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s allows egress on every port: %+v", name, r)
			}
		}
		for _, r := range np.Spec.Ingress {
			if len(r.Ports) == 0 || len(r.From) == 0 {
				t.Errorf("NetworkPolicy %s allows ingress from anyone or on every port: %+v", name, r)
			}
		}
	}
	for name := range m.deployments {
		if !covered[name] {
			t.Errorf("Deployment %s has no NetworkPolicy", name)
		}
	}
	for name := range m.jobs {
		if !covered[name] {
			t.Errorf("Job %s has no NetworkPolicy", name)
		}
	}
	// The gateway may reach only the broker (and DNS); the broker is
	// reached by the gateway but by no agent.
	if np := m.netpols[gateway]; np != nil {
		for _, r := range np.Spec.Egress {
			for _, p := range r.To {
				if p.IPBlock != nil {
					t.Errorf("gateway may reach %v: it only calls the broker", p.IPBlock)
				}
			}
		}
	}
}
