package metalsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// imageVersion is the parsed "<os>-<major>.<minor>.<patch>" form of an image id.
type imageVersion struct {
	os                  string
	major, minor, patch uint64
}

// parseImageID splits an image id at its last "-" into os and version and
// parses up to three numeric version parts.
func parseImageID(id string) (imageVersion, error) {
	i := strings.LastIndex(id, "-")
	if i <= 0 || i == len(id)-1 {
		return imageVersion{}, fmt.Errorf("image id %q is not <os>-<version>", id)
	}
	v := imageVersion{os: id[:i]}
	parts := strings.Split(id[i+1:], ".")
	if len(parts) > 3 {
		return imageVersion{}, fmt.Errorf("image id %q: too many version parts", id)
	}
	nums := []*uint64{&v.major, &v.minor, &v.patch}
	for j, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return imageVersion{}, fmt.Errorf("image id %q: version part %q is not a number", id, p)
		}
		*nums[j] = n
	}
	return v, nil
}

// resolveImage implements metal-api's latest-image semantics: a patch
// version > 0 must match exactly, otherwise the highest patch of the same
// os and major.minor wins. ok is false when nothing matches.
func (st *state) resolveImage(id string) (*Image, bool) {
	want, err := parseImageID(id)
	if err != nil {
		return nil, false
	}
	var best *Image
	var bestPatch uint64
	for i := range st.images {
		img := &st.images[i]
		have, err := parseImageID(img.ID)
		if err != nil || have.os != want.os || have.major != want.major || have.minor != want.minor {
			continue
		}
		if want.patch > 0 {
			if have.patch == want.patch {
				return img, true
			}
			continue
		}
		if best == nil || have.patch > bestPatch {
			best, bestPatch = img, have.patch
		}
	}
	return best, best != nil
}

func (st *state) imageByID(id string) (*Image, bool) {
	for i := range st.images {
		if st.images[i].ID == id {
			return &st.images[i], true
		}
	}
	return nil, false
}

func hasAllFeatures(img *Image, features []string) bool {
	for _, f := range features {
		if !slices.Contains(img.Features, f) {
			return false
		}
	}
	return true
}
