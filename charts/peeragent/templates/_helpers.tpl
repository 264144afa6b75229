{{/*
Every named template here takes a dict, so a chart that depends on peeragent can
call them from its own context:

  root         the calling chart's top-level context ($): Release, Chart, Values.
  chart        optional: the name of the caller's dependency on this chart, its
               alias if it has one. Default: peeragent.
  values       optional: the peeragent values. Default: root.Values.<chart> when
               the caller depends on this chart, else root.Values (this chart itself).
  serviceName  (sidecar only) the headless Service that governs the StatefulSet.
  ordinalStart (sidecar only, optional) the StatefulSet's .spec.ordinals.start.
  replicas     (sidecar, ignored) no longer used: the agents follow the
               StatefulSet's replicas live (cluster.source), so none is written
               into the pod template.
  statefulSetName, serviceAccountName (rbac only) the StatefulSet the agents
               watch and the ServiceAccount its pods run as.
*/}}

{{/* The peeragent values for a call (see above), as YAML; read with fromYaml. */}}
{{- define "peeragent.valuesOf" -}}
{{- $v := .values }}
{{- if not $v }}
{{- $v = get .root.Values (.chart | default "peeragent") | default .root.Values }}
{{- end }}
{{- toYaml $v }}
{{- end }}

{{/*
Full name of the chart's objects. The chart name is spelled out rather than
taken from .Chart, so a depending chart computes the same names as this chart's
own templates do.
*/}}
{{- define "peeragent.fullname" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- if $v.fullnameOverride }}
{{- $v.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "peeragent" $v.nameOverride }}
{{- if contains $name .root.Release.Name }}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on the chart's own objects. */}}
{{- define "peeragent.labels" -}}
helm.sh/chart: {{ printf "peeragent-%s" (include "peeragent.chartVersion" .) | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: peeragent
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ include "peeragent.appVersion" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
This chart's metadata, whether called from this chart or from one that depends
on it (through .Subcharts). An alias renames the chart (.Chart.Name is the
alias), so this chart knows itself by its annotation.
*/}}
{{- define "peeragent.chart" -}}
{{- $name := .chart | default "peeragent" }}
{{- if eq (index (.root.Chart.Annotations | default dict) "peerdns.github.io/chart" | toString) "peeragent" }}
{{- toYaml .root.Chart }}
{{- else if and .root.Subcharts (hasKey .root.Subcharts $name) }}
{{- toYaml (index .root.Subcharts $name).Chart }}
{{- else }}
{{- fail (printf "peeragent: the calling chart has no dependency %q on the peeragent chart; add it to Chart.yaml dependencies, or pass its alias as \"chart\"" $name) }}
{{- end }}
{{- end }}

{{- define "peeragent.appVersion" -}}
{{- (include "peeragent.chart" . | fromYaml).appVersion }}
{{- end }}

{{- define "peeragent.chartVersion" -}}
{{- (include "peeragent.chart" . | fromYaml).version }}
{{- end }}

{{/* Image reference: repository, then @digest when set, else :tag (default appVersion). */}}
{{- define "peeragent.image" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- if $v.image.digest }}
{{- printf "%s@%s" $v.image.repository $v.image.digest }}
{{- else }}
{{- printf "%s:%s" $v.image.repository ($v.image.tag | default (include "peeragent.appVersion" .)) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the gossip keys. */}}
{{- define "peeragent.gossipSecretName" -}}
{{- $v := include "peeragent.valuesOf" . | fromYaml }}
{{- $v.gossipKeys.existingSecret | default (printf "%s-gossip-keys" (include "peeragent.fullname" . | trunc 51 | trimSuffix "-")) }}
{{- end }}

{{/* Name of the pod volume that carries the gossip keys. */}}
{{- define "peeragent.gossipVolumeName" -}}
peeragent-gossip-keys
{{- end }}

{{/* Name of the pod volume that carries the sidecar's API token (cluster.source kubernetes). */}}
{{- define "peeragent.apiTokenVolumeName" -}}
peeragent-api-token
{{- end }}

{{/* Name of the pod volume that carries the target size (cluster.source file). */}}
{{- define "peeragent.sizeVolumeName" -}}
peeragent-size
{{- end }}

{{/* Directory the target size's ConfigMap is mounted at. */}}
{{- define "peeragent.sizeDir" -}}
/etc/peeragent/size
{{- end }}

{{/* Name of the pod volume that carries the web configuration. */}}
{{- define "peeragent.webConfigVolumeName" -}}
peeragent-web-config
{{- end }}

{{/* Where the web configuration Secret is mounted in the sidecar. */}}
{{- define "peeragent.webConfigDir" -}}
/etc/peeragent/web-config
{{- end }}
