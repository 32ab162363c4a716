{{/* Settings the processes would refuse at start, refused at render time instead. */}}
{{- define "dromos.validate" -}}
{{- if not (has .Values.mode (list "split" "serve")) -}}
{{- fail (printf "mode must be split or serve, not %q" .Values.mode) -}}
{{- end -}}
{{- $base := include "dromos.baseURL" . -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $_ := required "secrets.databaseURL is required (postgres://…), or set secrets.existingSecret" .Values.secrets.databaseURL -}}
{{- end -}}
{{- if .Values.production -}}
{{- if not (hasPrefix "https://" $base) -}}
{{- fail "broker.baseURL must be https:// with production: true" -}}
{{- end -}}
{{- if not .Values.broker.allowedReturnDomains -}}
{{- fail "broker.allowedReturnDomains is required with production: true (the hosts agents may send users back to)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
