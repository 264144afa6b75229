{{/*
Chart name, overridable with nameOverride. Kubernetes names are limited to 63
characters.
*/}}
{{- define "peerdns.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else <release>-<name>, or
just the release name when it already contains the chart name.
*/}}
{{- define "peerdns.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "peerdns.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "peerdns.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: dns
{{- end }}

{{/*
Selector labels: immutable once a Deployment exists, so nothing here may change
between chart versions (no chart version, no app version).
*/}}
{{- define "peerdns.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peerdns.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the ServiceAccount the pods run as. */}}
{{- define "peerdns.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "peerdns.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: repository, then @digest when set, else :tag (default appVersion). */}}
{{- define "peerdns.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Termination grace period: the value when set, else lame duck + 10 s. peerdns
keeps serving for the lame-duck period after SIGTERM; a grace period that ends
first would kill it mid-answer, so that is a rendering error.
*/}}
{{- define "peerdns.terminationGracePeriodSeconds" -}}
{{- $lameDuck := int .Values.dns.lameDuckSeconds }}
{{- $grace := add $lameDuck 10 }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- $grace = int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- if le $grace $lameDuck }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than dns.lameDuckSeconds (%d): the pod would be killed while still in lame duck" $grace $lameDuck) }}
{{- end }}
{{- $grace }}
{{- end }}

{{/* Zone names without their trailing dot, as a Corefile writes them. */}}
{{- define "peerdns.corefileZones" -}}
{{- $zones := list }}
{{- range .Values.zones }}
{{- $zones = append $zones (trimSuffix "." .) }}
{{- end }}
{{- join " " $zones }}
{{- end }}

{{/*
peerdns.probe renders a probe from values with the web configuration applied to
an httpGet probe: scheme HTTPS with webConfig.tls (unless the probe sets its
own), then webConfig.probeHeaders after the probe's own httpHeaders. Nothing
changes without webConfig.secretName. Call with (dict "probe" <probe> "root" $).
*/}}
{{- define "peerdns.probe" -}}
{{- $p := deepCopy .probe }}
{{- $wc := .root.Values.webConfig }}
{{- if and $wc.secretName $p.httpGet }}
{{- if and $wc.tls (not $p.httpGet.scheme) }}
{{- $_ := set $p.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- with $wc.probeHeaders }}
{{- $_ := set $p.httpGet "httpHeaders" (concat ($p.httpGet.httpHeaders | default list) .) }}
{{- end }}
{{- end }}
{{- toYaml $p }}
{{- end }}

{{/* Where the web configuration Secret is mounted. */}}
{{- define "peerdns.webConfigDir" -}}
/etc/peerdns/web-config
{{- end }}
