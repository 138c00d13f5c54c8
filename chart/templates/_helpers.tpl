{{- define "gitops.fullname" -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "gitops.serviceAccount" -}}{{ default (include "gitops.fullname" .) .Values.serviceAccount.name }}{{- end -}}
{{- define "gitops.labels" -}}
app.kubernetes.io/name: keptn-gitops-service
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: keptn-keptn
app.kubernetes.io/component: execution-plane
{{- end -}}
