{{/* Names and labels shared by every template. */}}

{{- define "darwin-dra.name" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "darwin-dra.labels" -}}
app.kubernetes.io/name: darwin-dra
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "darwin-dra.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The API server's address for in-cluster clients, when the Service cannot be used. */}}
{{- define "darwin-dra.apiServerEnv" -}}
{{- if .Values.apiServer.host }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.apiServer.host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.apiServer.port | quote }}
{{- end }}
{{- end -}}

{{- define "darwin-dra.pluginName" -}}
{{ include "darwin-dra.name" . }}-kubelet-plugin
{{- end -}}

{{- define "darwin-dra.controllerName" -}}
{{ include "darwin-dra.name" . }}-controller
{{- end -}}

{{/*
The driver's pods write host paths and hold cluster-wide RBAC: refuse the default namespace,
where every workload's service account would sit beside them.
*/}}
{{- define "darwin-dra.namespaceGuard" -}}
{{- if eq .Release.Namespace "default" -}}
{{- fail "darwin-dra must not be installed in the default namespace: use --namespace darwin-dra --create-namespace" -}}
{{- end -}}
{{- end -}}
