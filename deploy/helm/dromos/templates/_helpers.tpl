{{- define "dromos.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dromos.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: dromos.component (dict "ctx" $ "component" "broker") */}}
{{- define "dromos.component" -}}
{{- printf "%s-%s" (include "dromos.fullname" .ctx | trunc 54 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "dromos.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "dromos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: dromos.selectorLabels (dict "ctx" $ "component" "broker") */}}
{{- define "dromos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dromos.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dromos.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "dromos.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "dromos.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "dromos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "dromos.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "dromos.baseURL" -}}
{{- $u := required "broker.baseURL is required: the broker's public URL (https://…)" .Values.broker.baseURL -}}
{{- trimSuffix "/" $u -}}
{{- end -}}

{{/* secretEnv NAME KEY: an env entry read from the chart's (or the existing) Secret. */}}
{{- define "dromos.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "dromos.secretName" .ctx }}
      key: {{ .key }}
{{- end -}}

{{/* Environment every Dromos container gets. */}}
{{- define "dromos.commonEnv" -}}
{{- if .Values.production }}
- name: DROMOS_ENV
  value: production
{{- end }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .component | quote }}
{{- end }}
{{- range $k, $v := .Values.otel.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "dromos.brokerEnv" -}}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "DATABASE_URL" "key" "DATABASE_URL") }}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "ENCRYPTION_KEYS" "key" "ENCRYPTION_KEYS") }}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "STATE_KEYS" "key" "STATE_KEYS") }}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "API_KEYS" "key" "BROKER_API_KEY") }}
- name: BASE_URL
  value: {{ include "dromos.baseURL" . | quote }}
- name: REDIRECT_PATH
  value: {{ .Values.broker.redirectPath | quote }}
{{- with .Values.broker.allowedReturnDomains }}
- name: ENFORCE_RETURN_URL
  value: "true"
- name: ALLOWED_RETURN_DOMAINS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.broker.trustedProxies }}
- name: TRUSTED_PROXIES
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{- define "dromos.gatewayEnv" -}}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "STATE_KEYS" "key" "STATE_KEYS") }}
{{ include "dromos.secretEnv" (dict "ctx" . "name" "GATEWAY_API_KEYS" "key" "GATEWAY_API_KEYS") }}
{{- end -}}

{{- define "dromos.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* The pod template every component shares: dromos.podTemplate (dict "ctx" $ "component" … "spec" values "args" … "env" yaml "ports" list "readyPath" …) */}}
{{- define "dromos.podTemplate" -}}
{{- $ctx := .ctx -}}
metadata:
  labels:
    {{- include "dromos.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
    app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
    {{- with $ctx.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $ctx.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "dromos.serviceAccountName" $ctx }}
  automountServiceAccountToken: false
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: 30
  containers:
    - name: {{ .component }}
      image: {{ include "dromos.image" $ctx | quote }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args: {{ toJson .args }}
      env:
        {{- .env | nindent 8 }}
      ports:
        {{- range .ports }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: TCP
        {{- end }}
      {{- $probePort := (index .ports 0).name }}
      startupProbe:
        httpGet: {path: /health, port: {{ $probePort }}}
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: {path: /health, port: {{ $probePort }}}
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: {{ .readyPath }}, port: {{ $probePort }}}
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 2
      resources:
        {{- toYaml .spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
  {{- with .spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .spec.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The components this release runs, as a list of dicts. */}}
{{- define "dromos.components" -}}
{{- if eq .Values.mode "serve" -}}
- serve
{{- else if eq .Values.mode "split" -}}
- broker
- gateway
{{- else -}}
{{- fail (printf "mode must be split or serve, not %q" .Values.mode) -}}
{{- end -}}
{{- end -}}
