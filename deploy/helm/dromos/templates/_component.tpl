{{/*
dromos.component.spec: what differs between broker, gateway and serve, as
YAML for fromYaml: args, ports, readiness path, the values block, env.
Called with (dict "ctx" $ "component" NAME).
*/}}
{{- define "dromos.component.spec" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $common := include "dromos.commonEnv" (dict "Values" $v "component" (printf "dromos-%s" .component)) -}}
{{- if eq .component "broker" }}
args: [broker]
readyPath: /ready
ports:
  - {name: http, port: {{ $v.broker.port }}}
env: |
  {{- $common | nindent 2 }}
  {{- include "dromos.brokerEnv" $ctx | nindent 2 }}
  - name: PORT
    value: {{ $v.broker.port | quote }}
  {{- include "dromos.extraEnv" $v.broker.env | nindent 2 }}
{{- else if eq .component "gateway" }}
args: [gateway]
readyPath: /health
ports:
  - {name: http, port: {{ $v.gateway.port }}}
  - {name: grpc, port: {{ $v.gateway.grpcPort }}}
env: |
  {{- $common | nindent 2 }}
  {{- include "dromos.gatewayEnv" $ctx | nindent 2 }}
  - name: BROKER_BASE_URL
    value: {{ printf "http://%s:%v" (include "dromos.component" (dict "ctx" $ctx "component" "broker")) $v.broker.port | quote }}
  {{- include "dromos.secretEnv" (dict "ctx" $ctx "name" "BROKER_API_KEY" "key" "BROKER_API_KEY") | nindent 2 }}
  - name: PORT
    value: {{ $v.gateway.port | quote }}
  - name: PORT_GRPC
    value: {{ $v.gateway.grpcPort | quote }}
  {{- include "dromos.extraEnv" $v.gateway.env | nindent 2 }}
{{- else if eq .component "serve" }}
args: [serve]
readyPath: /ready
ports:
  - {name: http, port: {{ $v.broker.port }}}
  - {name: gateway-http, port: {{ $v.gateway.port }}}
  - {name: grpc, port: {{ $v.gateway.grpcPort }}}
env: |
  {{- $common | nindent 2 }}
  {{- include "dromos.brokerEnv" $ctx | nindent 2 }}
  {{- include "dromos.secretEnv" (dict "ctx" $ctx "name" "GATEWAY_API_KEYS" "key" "GATEWAY_API_KEYS") | nindent 2 }}
  {{- include "dromos.extraEnv" $v.serve.env | nindent 2 }}
{{- end }}
{{- end -}}
