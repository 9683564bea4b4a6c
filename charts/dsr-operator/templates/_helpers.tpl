{{- define "dsr-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dsr-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dsr-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{- define "dsr-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dsr-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
rules (list $ FILE): the rules: list that hack/sync-chart.sh generated from config/rbac. A missing
file fails the render: a role without rules would install silently and grant nothing.
*/}}
{{- define "dsr-operator.rules" -}}
{{- $ := index . 0 -}}
{{- $file := index . 1 -}}
{{- $rules := $.Files.Get $file -}}
{{- if not (contains "rules:" $rules) -}}
{{- fail (printf "%s is missing or has no rules: run hack/sync-chart.sh" $file) -}}
{{- end -}}
{{- $rules -}}
{{- end -}}

{{/* metricsLabels: what the ServiceMonitor selects the metrics Service by. */}}
{{- define "dsr-operator.metricsLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: metrics
{{- end -}}

{{/*
The access report context file (--access-report-context): the non-empty parts of accessReports.
*/}}
{{- define "dsr-operator.accessReportContext" -}}
{{- $ctx := dict -}}
{{- with .Values.accessReports.controller }}{{ $_ := set $ctx "controller" . }}{{ end -}}
{{- with .Values.accessReports.dataProtectionOfficer }}{{ $_ := set $ctx "dataProtectionOfficer" . }}{{ end -}}
{{- with .Values.accessReports.supervisoryAuthorities }}{{ $_ := set $ctx "supervisoryAuthorities" . }}{{ end -}}
{{- toYaml $ctx -}}
{{- end -}}
