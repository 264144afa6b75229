#!/usr/bin/env bash
# Signs the pushed release images with cosign and a key pair, by digest:
#   hack/sign-images.sh cosign.key dist/image/digests.txt [REPOSITORY]
# digests.txt is what `make image` wrote, one <repository>/<program>:<tag>@sha256:…
# per line. With REPOSITORY, the images are taken from there instead (the
# part before /<program>:…), as for `make image IMAGE_REPOSITORY=…`
# published elsewhere. Signing by digest signs exactly what was built,
# whatever the tag points at. The signatures are stored in the registry
# beside the images; no transparency log is written (--tlog-upload=false):
# the signatures verify against the public key alone, with
#   cosign verify --key cosign.pub --insecure-ignore-tlog <image>
# $COSIGN (default cosign) is the binary; $COSIGN_PASSWORD the key's
# passphrase; extra cosign flags in $COSIGN_FLAGS (word-split).
set -euo pipefail
key=${1:?usage: sign-images.sh KEY DIGESTS [REPOSITORY]}
digests=${2:?usage: sign-images.sh KEY DIGESTS [REPOSITORY]}
repository=${3:-}
cosign=${COSIGN:-cosign}
read -r -a flags <<<"${COSIGN_FLAGS:-}"
n=0
while read -r line; do
	[ -n "$line" ] || continue
	ref=${line%@*}
	digest=${line#*@}
	case $digest in sha256:*) ;; *)
		echo "sign-images.sh: $digests: no @sha256: digest in: $line" >&2
		exit 1
		;;
	esac
	image=${ref%:*}
	if [ -n "$repository" ]; then
		image=$repository/${image##*/}
	fi
	echo "signing $image@$digest" >&2
	"$cosign" sign --yes --tlog-upload=false --key "$key" "${flags[@]}" "$image@$digest"
	n=$((n + 1))
done <"$digests"
[ "$n" -gt 0 ] || { echo "sign-images.sh: $digests lists no image" >&2; exit 1; }
