{{/* The namespace the agent and manager use; not configurable (see values.yaml). */}}
{{- define "palisade-workload.namespace" -}}firewall{{- end }}

{{- define "palisade-workload.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: palisade
{{- end }}

{{/* Subjects of the agent's bindings. */}}
{{- define "palisade-workload.agentSubjects" -}}
{{- if .Values.agent.serviceAccount.create }}
- kind: ServiceAccount
  name: {{ .Values.agent.serviceAccount.name }}
  namespace: {{ include "palisade-workload.namespace" . }}
{{- end }}
{{- range .Values.agent.extraSubjects }}
- kind: {{ .kind }}
  name: {{ .name }}
  {{- if eq .kind "ServiceAccount" }}
  namespace: {{ required "agent.extraSubjects: a ServiceAccount needs a namespace" .namespace }}
  {{- else }}
  apiGroup: rbac.authorization.k8s.io
  {{- end }}
{{- end }}
{{- end }}
