{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "apm-tls-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name: release-chart unless the release name already holds the chart name. */}}
{{- define "apm-tls-proxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "apm-tls-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (never add the version here). */}}
{{- define "apm-tls-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apm-tls-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "apm-tls-proxy.labels" -}}
helm.sh/chart: {{ include "apm-tls-proxy.chart" . }}
{{ include "apm-tls-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: apm-server
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Name of the Secret that holds tls.crt / tls.key / ca.crt. */}}
{{- define "apm-tls-proxy.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "apm-tls-proxy.fullname" .)) .Values.proxy.tls.secretName -}}
{{- end -}}

{{- define "apm-tls-proxy.configMapName" -}}
{{- printf "%s-proxy-config" (include "apm-tls-proxy.fullname" .) -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the whole pod's shutdown budget. Native sidecar: the intake
server sleeps in preStop, drains, exits; only then does the proxy get SIGTERM and spend
shutdown_delay + shutdown_timeout; plus a 10 s margin. (Classic: the proxy drains during the
intake server's preStop sleep, so the same sum is an upper bound.)
*/}}
{{- define "apm-tls-proxy.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- $proxy := include "apm-tls-proxy-lib.shutdownSeconds" (dict "proxy" .Values.proxy) | int -}}
{{- add (int .Values.intake.preStopSleepSeconds) (int .Values.intake.shutdownTimeoutSeconds) $proxy 10 -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}
