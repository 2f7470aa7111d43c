{{/* Chart name, overridable by nameOverride. */}}
{{- define "palisade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Names derived from it get a suffix (e.g. "-webhook"), so it
is truncated to leave room for one within 63 characters.
*/}}
{{- define "palisade.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "palisade.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every object. */}}
{{- define "palisade.labels" -}}
helm.sh/chart: {{ include "palisade.chart" . }}
{{ include "palisade.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: palisade
{{- end }}

{{/* Labels that select the manager pods; immutable in a Deployment, so keep them stable. */}}
{{- define "palisade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palisade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "palisade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "palisade.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "palisade.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The webhook Service; its name goes into the self-signed certificate's DNS names. */}}
{{- define "palisade.webhookServiceName" -}}
{{- printf "%s-webhook" (include "palisade.fullname" .) }}
{{- end }}

{{- define "palisade.certificateName" -}}
{{- printf "%s-webhook" (include "palisade.fullname" .) }}
{{- end }}

{{/* Secret written by cert-manager; the manager's own self-signed Secret is "palisade.webhookTLSSecretName". */}}
{{- define "palisade.certificateSecretName" -}}
{{- printf "%s-webhook-cert" (include "palisade.fullname" .) }}
{{- end }}

{{/* Where the manager reads (cert-manager) or writes (self-signed) tls.crt and tls.key. */}}
{{- define "palisade.webhookCertDir" -}}
/var/run/palisade/webhook-certs
{{- end }}

{{- define "palisade.hmacDir" -}}
/var/run/palisade/metal-api
{{- end }}

{{- define "palisade.agentCADir" -}}
/var/run/palisade/agent-api-server-ca
{{- end }}

{{/*
The webhook configurations generated from the kubebuilder markers (config/webhook/manifests.yaml,
copied by `make helm-sync`), as a dict from kind to object. The manager patches caBundle of
exactly these names, so they are not release-scoped.
*/}}
{{- define "palisade.generatedWebhooks" -}}
{{- $byKind := dict }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/webhook/manifests.yaml") -1 }}
{{- if trim $doc }}
{{- $obj := fromYaml $doc }}
{{- $_ := set $byKind $obj.kind $obj }}
{{- end }}
{{- end }}
{{- toYaml $byKind }}
{{- end }}

{{/*
One webhook entry of a configuration: name, path, rules and admission settings from the generated
manifest; service, failure policy, timeout and namespace selector from the values.
*/}}
{{- define "palisade.webhookEntry" -}}
{{- $root := .root }}
{{- with .webhook -}}
- name: {{ .name }}
  admissionReviewVersions: {{- toYaml .admissionReviewVersions | nindent 4 }}
  clientConfig:
    service:
      name: {{ include "palisade.webhookServiceName" $root }}
      namespace: {{ $root.Release.Namespace }}
      path: {{ .clientConfig.service.path }}
      port: 443
  failurePolicy: {{ $root.Values.webhook.failurePolicy }}
  sideEffects: {{ .sideEffects }}
  timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
  {{- with $root.Values.webhook.namespaceSelector }}
  namespaceSelector: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .matchConditions }}
  matchConditions: {{- toYaml . | nindent 4 }}
  {{- end }}
  rules: {{- toYaml .rules | nindent 4 }}
{{- end }}
{{- end }}

{{/*
The generated RBAC (files/rbac/role.yaml, from the +kubebuilder:rbac markers) as a dict:
"cluster" holds the ClusterRole's rules, "release" the rules of the Role in the placeholder
namespace palisade-system (the manager's own namespace), "served" the rules of the Role in the
placeholder namespace served-namespace (every namespace the manager serves).
*/}}
{{- define "palisade.generatedRBAC" -}}
{{- $out := dict "cluster" list "release" list "served" list "shoot" list }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/rbac/role.yaml") -1 }}
{{- if trim $doc }}
{{- $obj := fromYaml $doc }}
{{- if eq $obj.kind "ClusterRole" }}
{{- $_ := set $out "cluster" $obj.rules }}
{{- else if eq $obj.metadata.namespace "palisade-system" }}
{{- $_ := set $out "release" $obj.rules }}
{{- else if eq $obj.metadata.namespace "served-namespace" }}
{{- $_ := set $out "served" $obj.rules }}
{{- else if eq $obj.metadata.namespace "shoot-namespace" }}
{{- $_ := set $out "shoot" $obj.rules }}
{{- else }}
{{- fail (printf "files/rbac/role.yaml: unexpected %s in namespace %q" $obj.kind $obj.metadata.namespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The namespaces the manager serves (--namespace); empty in cluster-wide mode. */}}
{{- define "palisade.servedNamespaces" -}}
{{- if .Values.rbac.clusterWide }}
{{- toYaml (dict "items" list) }}
{{- else }}
{{- toYaml (dict "items" (.Values.namespaces | default (list .Release.Namespace) | uniq)) }}
{{- end }}
{{- end }}

{{/* Per-release webhook configuration names, so that two releases can coexist. */}}
{{- define "palisade.mutatingWebhookConfigurationName" -}}
{{- printf "%s-mutating-webhook-configuration" (include "palisade.fullname" .) }}
{{- end }}
{{- define "palisade.validatingWebhookConfigurationName" -}}
{{- printf "%s-validating-webhook-configuration" (include "palisade.fullname" .) }}
{{- end }}
{{/* The manager's self-signed webhook certificate Secret (without cert-manager). */}}
{{- define "palisade.webhookTLSSecretName" -}}
{{- printf "%s-webhook-tls" (include "palisade.fullname" .) }}
{{- end }}
