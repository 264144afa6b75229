package ociimage

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// SourceDateEpoch returns the time in $SOURCE_DATE_EPOCH (seconds since the
// Unix epoch, see https://reproducible-builds.org/specs/source-date-epoch/),
// or the Unix epoch itself when the variable is unset or empty.
func SourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
