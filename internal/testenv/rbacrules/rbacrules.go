// Package rbacrules expands RBAC rules into single grants and names the ones a security review
// rejects, for the tests that hold the generated and rendered RBAC to docs/security.md.
package rbacrules

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Grant is one verb on one resource (or non-resource URL), optionally limited to one name.
type Grant struct {
	Group, Resource, Verb, Name string
	URL                         string
}

func (g Grant) String() string {
	if g.URL != "" {
		return g.Verb + " " + g.URL
	}
	s := g.Verb + " " + g.Resource
	if g.Group != "" {
		s += "." + g.Group
	}
	if g.Name != "" {
		s += "/" + g.Name
	}
	return s
}

// Expand lists every grant of rules, sorted and without duplicates.
func Expand(rules []rbacv1.PolicyRule) []Grant {
	var out []Grant
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, verb := range r.Verbs {
			for _, url := range r.NonResourceURLs {
				out = append(out, Grant{Verb: verb, URL: url})
			}
			for _, group := range r.APIGroups {
				for _, res := range r.Resources {
					for _, name := range names {
						out = append(out, Grant{Group: group, Resource: res, Verb: verb, Name: name})
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// ClusterWideProblem says why g must not be granted cluster-wide, or "" when it may be.
func ClusterWideProblem(g Grant) string {
	if p := Problem(g); p != "" {
		return p
	}
	switch {
	case g.Group == "" && g.Resource == "serviceaccounts/token":
		return "mints tokens for any ServiceAccount"
	case g.Group == "" && g.Resource == "secrets":
		return "reads or writes every Secret"
	case g.Group == "" && g.Resource == "serviceaccounts" && slices.Contains(writeVerbs, g.Verb):
		return "writes every ServiceAccount"
	case g.Group == rbacv1.GroupName && slices.Contains(writeVerbs, g.Verb):
		return "writes RBAC in every namespace"
	}
	return ""
}

// Problem says why g must not be granted at all, or "" when it may be.
func Problem(g Grant) string {
	for _, f := range []string{g.Group, g.Resource, g.Verb, g.Name, g.URL} {
		if strings.Contains(f, "*") {
			return "wildcard"
		}
	}
	switch {
	case slices.Contains([]string{"escalate", "bind", "impersonate"}, g.Verb):
		return fmt.Sprintf("verb %q", g.Verb)
	case g.Group == "" && g.Resource == "pods/exec", g.Resource == "nodes/proxy":
		return "runs code on nodes or in pods"
	case g.Group == rbacv1.GroupName && strings.HasPrefix(g.Resource, "cluster") && slices.Contains(writeVerbs, g.Verb):
		return "writes cluster RBAC"
	}
	return ""
}
