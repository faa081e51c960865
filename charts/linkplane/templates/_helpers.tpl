{{/* Chart name, at most 63 characters (DNS label). */}}
{{- define "linkplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless the release name already contains it. */}}
{{- define "linkplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "linkplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "linkplane.labels" -}}
helm.sh/chart: {{ include "linkplane.chart" . }}
{{ include "linkplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the server pods; never change them (Deployment selectors are immutable). */}}
{{- define "linkplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linkplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "linkplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "linkplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the server reads its secret flags from. */}}
{{- define "linkplane.secretName" -}}
{{- default (include "linkplane.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "linkplane.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The container port: the port of config.listen ("0.0.0.0:8080", "[::]:8080"). */}}
{{- define "linkplane.port" -}}
{{- splitList ":" .Values.config.listen | last | int }}
{{- end }}

{{/* Fails rendering with a clear message when the values cannot work together. */}}
{{- define "linkplane.validate" -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.databaseUrl) }}
{{- fail "linkplane: set secrets.databaseUrl (DATABASE_URL) or secrets.existingSecret (a Secret with the key secretKeys.databaseUrl)" }}
{{- end }}
{{- if and (eq .Values.migrations.mode "job") (not .Values.secrets.existingSecret) }}
{{- fail "linkplane: migrations.mode=job needs secrets.existingSecret: the pre-install hook Job runs before the chart's own Secret exists" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "linkplane: podDisruptionBudget.enabled needs podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable" }}
{{- end }}
{{- end }}

{{/* Environment variables of secret flags, read from the Secret. Shared by the server and the migration Job. */}}
{{- define "linkplane.secretEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "linkplane.secretName" . }}
      key: {{ .Values.secretKeys.databaseUrl }}
{{- end }}

{{/*
The optional secrets in use, as a YAML map from their values name to their key in the Secret:
with the chart's own Secret those whose value is set (key: secretKeys.<name>, else the default
below); with secrets.existingSecret those whose secretKeys.<name> is set.
*/}}
{{- define "linkplane.optionalSecretKeys" -}}
{{- $defaults := dict "webhookSecret" "webhook-secret" "gitToken" "git-token" "gitSshKey" "git-ssh-key" "credentialsKey" "credentials-key" "bootstrapAdminToken" "bootstrap-admin-token" }}
{{- range $name, $default := $defaults }}
{{- $key := index $.Values.secretKeys $name }}
{{- if $.Values.secrets.existingSecret }}
{{- if $key }}
{{ $name }}: {{ $key | quote }}
{{- end }}
{{- else if index $.Values.secrets $name }}
{{ $name }}: {{ default $default $key | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the Secret is mounted; file flags point at <dir>/<key>. */}}
{{- define "linkplane.secretsDir" -}}
/etc/linkplane/secrets
{{- end }}

{{/* Where the tls.secretName Secret is mounted. */}}
{{- define "linkplane.tlsDir" -}}
/etc/linkplane/tls
{{- end }}

{{/*
Flags of the optional secrets in use: file flags point into the mounted Secret; flags that only
exist as environment variables read the key directly.
*/}}
{{- define "linkplane.optionalSecretEnv" -}}
{{- $keys := include "linkplane.optionalSecretKeys" . | fromYaml }}
{{- $files := dict "webhookSecret" "LINKPLANE_WEBHOOK_SECRET_FILE" "gitToken" "LINKPLANE_GIT_TOKEN_FILE" "gitSshKey" "LINKPLANE_GIT_SSH_KEY_FILE" "credentialsKey" "LINKPLANE_CREDENTIALS_KEY_FILE" }}
{{- $envs := dict "bootstrapAdminToken" "LINKPLANE_BOOTSTRAP_ADMIN_TOKEN" }}
{{- range $name, $key := $keys }}
{{- if hasKey $files $name }}
- name: {{ index $files $name }}
  value: {{ printf "%s/%s" (include "linkplane.secretsDir" $) $key | quote }}
{{- else }}
- name: {{ index $envs $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "linkplane.secretName" $ }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}

{{/* A probe from values, switched to HTTPS when the server serves TLS. Call with (list $ probe). */}}
{{- define "linkplane.probe" -}}
{{- $root := index . 0 }}
{{- $probe := deepCopy (index . 1) }}
{{- if and $root.Values.tls.secretName $probe.httpGet }}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $probe }}
{{- end }}
