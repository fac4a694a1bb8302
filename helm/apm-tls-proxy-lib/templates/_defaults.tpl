{{/*
Defaults for the sidecar's values. Callers pass partial values; they are merged over these.
Durations are whole seconds so that a chart can add them up (termination grace period).
*/}}
{{- define "apm-tls-proxy-lib.defaults" -}}
image:
  repository: ghcr.io/apm-tls-proxy/apm-tls-proxy
  tag: ""
  pullPolicy: IfNotPresent
sidecarMode: native
containerName: apm-tls-proxy
httpsPort: 8200
adminPort: 9900
server:
  shutdownDelaySeconds: 5
  shutdownTimeoutSeconds: 20
  workers: 0
  maxConnections: 0
upstream:
  url: http://127.0.0.1:8201
tls:
  secretName: ""
  clientAuthentication: none
  useSecretCA: false
  supportedProtocols:
    - TLSv1.2
    - TLSv1.3
  reloadIntervalSeconds: 60
  waitForCertificates: false
  allowedClients:
    commonNames: []
    organizationalUnits: []
    dnsNames: []
    uris: []
    ipAddresses: []
admin:
  readyRequiresUpstream: true
log:
  level: info
  format: json
  access: "off"
resources:
  requests:
    cpu: 100m
    memory: 64Mi
  limits:
    cpu: "1"
    memory: 256Mi
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
probes:
  startup:
    periodSeconds: 1
    failureThreshold: 30
  liveness:
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readiness:
    periodSeconds: 2
    timeoutSeconds: 2
    failureThreshold: 1
extraEnv: []
{{- end -}}

{{/*
The caller's values merged over the defaults, as YAML. Usage:
  {{- $p := fromYaml (include "apm-tls-proxy-lib.values" (dict "proxy" .Values.proxy)) }}
*/}}
{{- define "apm-tls-proxy-lib.values" -}}
{{- $defaults := fromYaml (include "apm-tls-proxy-lib.defaults" .) -}}
{{- $given := deepCopy (default (dict) .proxy) -}}
{{- toYaml (mergeOverwrite $defaults $given) -}}
{{- end -}}
