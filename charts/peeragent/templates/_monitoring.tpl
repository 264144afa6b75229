{{- /*
peeragent.prometheusLabels: the labels of a ServiceMonitor, PodMonitor or
PrometheusRule: `release: <prometheusRelease>` when set, which
kube-prometheus-stack's Prometheus selects them by (its default
serviceMonitorSelector, podMonitorSelector and ruleSelector are
`matchLabels: {release: <its release name>}`), then the object's own labels,
which win. Takes a dict: values (the chart's values), labels.
*/}}
{{- define "peeragent.prometheusLabels" -}}
{{- $l := dict }}
{{- with .values.prometheusRelease }}
{{- $_ := set $l "release" . }}
{{- end }}
{{- $l = merge (deepCopy (.labels | default dict)) $l }}
{{- with $l }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{- /*
peeragent.alertRules: the rules of group peeragent of files/alerts.yml (a copy of
monitoring/alerts.yml that `go test ./charts` keeps identical) as the chart's
values tune them: prometheusRule.alerts.<alert> drops (enabled: false) or
changes (for, labels) one alert, and every runbook_url points at
docs/runbooks.md of the chart's own version (prometheusRule.runbookURL
overrides). Takes the chart's top-level context.
*/}}
{{- define "peeragent.alertRules" -}}
{{- $group := dict }}
{{- range (.Files.Get "files/alerts.yml" | fromYaml).groups }}
{{- if eq .name "peeragent" }}
{{- $group = . }}
{{- end }}
{{- end }}
{{- if not $group }}
{{- fail "files/alerts.yml has no peeragent group" }}
{{- end }}
{{- /* A release's runbooks are at its tag; a development build's
       (<release>-dev-g<commit>) at its commit. */}}
{{- $ref := .Chart.AppVersion }}
{{- with regexFind "-dev-g[0-9a-f]+" $ref }}
{{- $ref = trimPrefix "-dev-g" . }}
{{- end }}
{{- $runbooks := .Values.prometheusRule.runbookURL | default (printf "https://github.com/peerdns/peerdns/blob/%s/docs/runbooks.md" $ref) }}
{{- $tuned := .Values.prometheusRule.alerts | default dict }}
{{- $known := list }}
{{- $rules := list }}
{{- range $group.rules }}
{{- $known = append $known .alert }}
{{- $tune := get $tuned .alert | default dict }}
{{- if not (and (hasKey $tune "enabled") (not $tune.enabled)) }}
{{- $rule := deepCopy . }}
{{- with $tune.for }}
{{- $_ := set $rule "for" . }}
{{- end }}
{{- with $tune.labels }}
{{- $_ := set $rule "labels" (merge (deepCopy .) $rule.labels) }}
{{- end }}
{{- $_ := set $rule.annotations "runbook_url" (replace "https://github.com/peerdns/peerdns/blob/main/docs/runbooks.md" $runbooks $rule.annotations.runbook_url) }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- end }}
{{- range $name, $_ := $tuned }}
{{- if not (has $name $known) }}
{{- fail (printf "prometheusRule.alerts.%s: no such alert in the peeragent group (%s)" $name (join ", " $known)) }}
{{- end }}
{{- end }}
{{- toYaml (dict "name" $group.name "rules" $rules) }}
{{- end }}
