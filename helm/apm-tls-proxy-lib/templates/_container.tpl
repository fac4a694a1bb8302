{{/*
Image reference; the tag defaults to the calling chart's appVersion (never "latest").
Input: dict "proxy" <values> "root" $.
*/}}
{{- define "apm-tls-proxy-lib.image" -}}
{{- $p := fromYaml (include "apm-tls-proxy-lib.values" .) -}}
{{- printf "%s:%s" $p.image.repository (default .root.Chart.AppVersion $p.image.tag | toString) -}}
{{- end -}}

{{/*
The sidecar container as one list item. Put it under initContainers when sidecarMode is
"native" (it then carries restartPolicy: Always), under containers when "classic".
Input: dict "proxy" <values> "root" $ "configMapName" <name> "secretName" <name>.
Probes: startup and liveness on /healthz, which never depends on the upstream (with a native
sidecar the upstream only starts once the startup probe passed: waiting for it would
deadlock); readiness on /readyz, which may follow the upstream.
*/}}
{{- define "apm-tls-proxy-lib.container" -}}
{{- $p := fromYaml (include "apm-tls-proxy-lib.values" .) -}}
- name: {{ $p.containerName }}
  image: {{ include "apm-tls-proxy-lib.image" . | quote }}
  imagePullPolicy: {{ $p.image.pullPolicy }}
  {{- if eq $p.sidecarMode "native" }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
    - --config
    - /etc/apm-tls-proxy/apm-tls-proxy.toml
  {{- with $p.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: https
      containerPort: {{ $p.httpsPort }}
      protocol: TCP
    - name: admin
      containerPort: {{ $p.adminPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml $p.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml $p.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    {{- toYaml $p.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml $p.resources | nindent 4 }}
  securityContext:
    {{- toYaml $p.securityContext | nindent 4 }}
  volumeMounts:
    - name: apm-tls-proxy-config
      mountPath: /etc/apm-tls-proxy
      readOnly: true
    # A directory mount, never subPath: Secret updates arrive as a ..data symlink swap.
    - name: apm-tls-proxy-tls
      mountPath: /etc/apm-tls-proxy/tls
      readOnly: true
{{- end -}}

{{/*
The sidecar's volumes as list items. The Secret gets mode 0440: readable by the pod's
fsGroup, which the proxy (gid 65532) belongs to.
Input: dict "configMapName" <name> "secretName" <name>.
*/}}
{{- define "apm-tls-proxy-lib.volumes" -}}
- name: apm-tls-proxy-config
  configMap:
    name: {{ .configMapName }}
- name: apm-tls-proxy-tls
  secret:
    secretName: {{ .secretName }}
    defaultMode: 288
{{- end -}}
