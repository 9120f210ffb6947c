{{/* Names and labels. */}}
{{- define "modelyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelyard.fullname" -}}
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

{{- define "modelyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "modelyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "modelyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The cluster file (ClusterConfig): .Values.cluster with .Values.modelDefaults merged under
every models[i] (the entry's own fields win; maps merge deeply). Returned as YAML.
*/}}
{{- define "modelyard.clusterConfig" -}}
{{- $cfg := deepCopy .Values.cluster -}}
{{- $models := list -}}
{{- range $m := .Values.cluster.models -}}
{{- $models = append $models (mergeOverwrite (deepCopy $.Values.modelDefaults) (deepCopy $m)) -}}
{{- end -}}
{{- $_ := set $cfg "models" $models -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The gateway's HTTP port (where the gateway replica or, with `proxy`, Serve's proxy listens). */}}
{{- define "modelyard.httpPort" -}}
{{- .Values.cluster.gateway.port | default 8000 | int -}}
{{- end -}}

{{/*
Where Prometheus scrapes each gateway pod's /metrics: the container port named "admin" when
cluster.gateway.admin_port is set (the route is then only there), else "http"; over https
when cluster.gateway.tls is set (cluster/gateway/http/admin.py).
*/}}
{{- define "modelyard.scrapePort" -}}
{{- if .Values.cluster.gateway.admin_port -}}admin{{- else -}}http{{- end -}}
{{- end -}}

{{- define "modelyard.scrapePortNumber" -}}
{{- .Values.cluster.gateway.admin_port | default (include "modelyard.httpPort" .) | int -}}
{{- end -}}

{{- define "modelyard.scrapeScheme" -}}
{{- if .Values.cluster.gateway.tls -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{- define "modelyard.ingressMode" -}}
{{- .Values.cluster.gateway.ingress | default "direct" -}}
{{- end -}}

{{/* Serve's proxy port: the gateway's port with `proxy`, ray.serveProxyPort with `direct`. */}}
{{- define "modelyard.proxyPort" -}}
{{- if eq (include "modelyard.ingressMode" .) "proxy" -}}
{{- include "modelyard.httpPort" . -}}
{{- else -}}
{{- .Values.ray.serveProxyPort | int -}}
{{- end -}}
{{- end -}}

{{/*
Checks the JSON schema cannot express; each failure names the value to change.
*/}}
{{- define "modelyard.validate" -}}
{{- $auth := .Values.cluster.auth | default dict -}}
{{- if and (eq ($auth.mode | default "off") "keys") (not .Values.secrets.existingSecret) -}}
{{- fail "secrets.existingSecret: required while cluster.auth.mode is \"keys\" (the Secret holding the key pepper; the chart never holds secret values)" -}}
{{- end -}}
{{- if and (eq ($auth.mode | default "off") "keys") (not .Values.secrets.pepperKey) -}}
{{- fail "secrets.pepperKey: required while cluster.auth.mode is \"keys\" (the key of the pepper in secrets.existingSecret)" -}}
{{- end -}}
{{- if and (or .Values.secrets.ledgerUrlKey .Values.secrets.hfTokenKey) (not .Values.secrets.existingSecret) -}}
{{- fail "secrets.existingSecret: required when secrets.ledgerUrlKey or secrets.hfTokenKey is set" -}}
{{- end -}}
{{- if and (eq (include "modelyard.ingressMode" .) "direct") (eq (include "modelyard.httpPort" . | int) (.Values.ray.serveProxyPort | int)) -}}
{{- fail (printf "cluster.gateway.port: %d is also ray.serveProxyPort; with ingress direct the gateway replica and Serve's proxy both listen on a gateway pod, so they need different ports" (include "modelyard.httpPort" . | int)) -}}
{{- end -}}
{{- $gw := .Values.cluster.gateway -}}
{{- $monitored := or .Values.monitoring.podMonitor.enabled .Values.monitoring.serviceMonitor.enabled -}}
{{- if and $gw.admin_port $monitored (has ($gw.admin_host | default "127.0.0.1") (list "127.0.0.1" "localhost" "::1")) -}}
{{- fail "cluster.gateway.admin_host: the admin listener (admin_port, where /metrics is then served) listens on loopback, which Prometheus cannot scrape; set it to 0.0.0.0 and limit who may reach it with networkPolicy.metricsFrom" -}}
{{- end -}}
{{- if and $gw.tls (not .Values.secrets.tlsSecret) -}}
{{- fail "secrets.tlsSecret: cluster.gateway.tls is set but no certificate is mounted; name a kubernetes.io/tls Secret (mounted at /etc/modelyard-tls on every Ray pod)" -}}
{{- end -}}
{{- if and .Values.secrets.tlsSecret (not $gw.tls) -}}
{{- fail "cluster.gateway.tls: secrets.tlsSecret is mounted but TLS is off; set cert_file /etc/modelyard-tls/tls.crt and key_file /etc/modelyard-tls/tls.key" -}}
{{- end -}}
{{- if and $gw.tls (($gw.tls | default dict).client_ca_file) -}}
{{- fail "cluster.gateway.tls.client_ca_file: mutual TLS on HTTP is not available under Ray Serve 2.60 (it cannot require a client certificate); terminate it in the ingress or mesh" -}}
{{- end -}}
{{- $gpusPerNode := (.Values.cluster.ray | default dict).gpus_per_node | default 8 | int -}}
{{- $names := dict -}}
{{- range $i, $g := .Values.workerGroups -}}
{{- if hasKey $names $g.name -}}
{{- fail (printf "workerGroups[%d].name: %q is used twice" $i $g.name) -}}
{{- end -}}
{{- $_ := set $names $g.name true -}}
{{- if or (eq $g.name "head") (eq $g.name "gateway") -}}
{{- fail (printf "workerGroups[%d].name: %q is reserved for the chart's own group" $i $g.name) -}}
{{- end -}}
{{- if and (eq $g.accelerator "gpu") (ne ($g.gpus | int) $gpusPerNode) -}}
{{- fail (printf "workerGroups[%d].gpus: %d GPUs per pod, but cluster.ray.gpus_per_node is %d (placement plans pack whole nodes of that size)" $i ($g.gpus | int) $gpusPerNode) -}}
{{- end -}}
{{- if and (eq $g.accelerator "cpu") ($g.virtualGpus | default 0 | int) (ne ($g.virtualGpus | int) $gpusPerNode) -}}
{{- fail (printf "workerGroups[%d].virtualGpus: %d, but cluster.ray.gpus_per_node is %d" $i ($g.virtualGpus | int) $gpusPerNode) -}}
{{- end -}}
{{- if gt ($g.minReplicas | int) ($g.maxReplicas | int) -}}
{{- fail (printf "workerGroups[%d].minReplicas: %d exceeds maxReplicas %d" $i ($g.minReplicas | int) ($g.maxReplicas | int)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Serve's ingress mode as environment (deployments/ingress.py serve_environment): Serve reads
it in every process at import, so every Ray container gets it. The draining period keeps
Serve's default (30 s) behind a Service.
*/}}
{{- define "modelyard.serveEnv" -}}
{{- if eq (include "modelyard.ingressMode" .) "proxy" -}}
- {name: RAY_SERVE_THROUGHPUT_OPTIMIZED, value: "0"}
- {name: RAY_SERVE_ENABLE_DIRECT_INGRESS, value: "0"}
{{- else -}}
{{- $port := include "modelyard.httpPort" . | int -}}
{{- $replicas := (.Values.cluster.gateway.replicas | default 1 | int) -}}
{{- $stop := min 65536 (add $port $replicas 8) -}}
- {name: RAY_SERVE_THROUGHPUT_OPTIMIZED, value: "1"}
- {name: RAY_SERVE_ENABLE_DIRECT_INGRESS, value: "1"}
- {name: RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT, value: {{ $port | quote }}}
- {name: RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT, value: {{ $stop | quote }}}
- {name: RAY_SERVE_PORT_QUARANTINE_S, value: "0"}
{{- end -}}
{{- end -}}

{{/* Secrets of the gateway and head (API key pepper, ledger URL), by reference. */}}
{{- define "modelyard.authEnv" -}}
{{- $s := .Values.secrets -}}
{{- if eq ((.Values.cluster.auth | default dict).mode | default "off") "keys" }}
- name: {{ (.Values.cluster.auth | default dict).pepper_env | default "MODELYARD_KEY_PEPPER" }}
  valueFrom:
    secretKeyRef: {name: {{ $s.existingSecret }}, key: {{ $s.pepperKey }}}
{{- end }}
{{- if $s.ledgerUrlKey }}
- name: {{ (.Values.cluster.ledger | default dict).url_env | default "MODELYARD_LEDGER_URL" }}
  valueFrom:
    secretKeyRef: {name: {{ $s.existingSecret }}, key: {{ $s.ledgerUrlKey }}}
{{- end }}
{{- end -}}

{{/* Where weights and tokenizers come from (gateway and workers). */}}
{{- define "modelyard.modelEnv" -}}
- {name: HF_HOME, value: {{ .Values.modelCache.mountPath | quote }}}
{{- if .Values.secrets.hfTokenKey }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.existingSecret }}, key: {{ .Values.secrets.hfTokenKey }}, optional: true}
{{- end }}
{{- end -}}

{{/* The cluster file and, with secrets.tlsSecret, the gateway's certificate (every Ray pod). */}}
{{- define "modelyard.configVolume" -}}
- name: cluster-config
  configMap:
    name: {{ include "modelyard.fullname" . }}-config
{{- if .Values.secrets.tlsSecret }}
- name: gateway-tls
  secret:
    secretName: {{ .Values.secrets.tlsSecret }}
{{- end }}
{{- end -}}

{{- define "modelyard.configMount" -}}
- {name: cluster-config, mountPath: /etc/modelyard, readOnly: true}
{{- if .Values.secrets.tlsSecret }}
- {name: gateway-tls, mountPath: /etc/modelyard-tls, readOnly: true}
{{- end }}
{{- end -}}


{{- define "modelyard.cacheVolume" -}}
- name: model-cache
{{- if .Values.modelCache.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.modelCache.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.modelCache.sizeLimit }}
{{- end }}
{{- end -}}

{{- define "modelyard.podMeta" -}}
labels:
  {{- include "modelyard.selectorLabels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  modelyard.io/group: {{ .group }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- /* No checksum of the cluster file here: a pod template change makes KubeRay replace the
whole RayCluster, while a serveConfigV2 change updates the application in place. The mounted
ConfigMap follows changes by itself. */}}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
