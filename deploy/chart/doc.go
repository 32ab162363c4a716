// Package chart tests the Helm chart in deploy/helm/dromos: it renders the
// chart with Helm's own Go packages (the engine `helm template` and
// `helm install` use, and `helm lint`'s linter) for several value sets and
// decodes every manifest strictly into the k8s.io/api types, so a
// misspelt field, a wrong type or a missing required value fails the test.
// It lives in its own module (deploy/go.mod) so that the product's go.mod
// carries no Helm or Kubernetes dependency; `make deploy-test` runs it.
package chart
