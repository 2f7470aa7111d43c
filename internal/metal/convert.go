package metal

import (
	"encoding/json"
	"fmt"
)

// convert maps between the domain types of types.go and metal-go's models.
// Both carry metal-api's swagger field names (TestStructsMatchSwagger pins
// ours, metal-go generates its models from the same swagger, and
// TestDomainFieldsExistInMetalGo checks that every field of ours has its
// counterpart), so going through their JSON form copies field by field.
// Nothing here reaches the wire: metal-go encodes requests and decodes
// responses.
func convert[T any](from any) (*T, error) {
	b, err := json.Marshal(from)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", from, err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("converting %T to %T: %w", from, out, err)
	}
	return out, nil
}

// convertAll converts a list of models; nil entries are dropped.
func convertAll[T any, M any](from []*M) ([]*T, error) {
	out := make([]*T, 0, len(from))
	for _, m := range from {
		if m == nil {
			continue
		}
		t, err := convert[T](m)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
