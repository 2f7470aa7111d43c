package main

import (
	"fmt"
	"time"

	"github.com/palisade-fw/palisade/internal/metal"
)

// metalKeys are the metal-api key flags. The single key (--metal-api-hmac-file or env
// METAL_API_HMAC, with --metal-api-hmac-auth-type) signs every call that has no key of its
// own; the per-purpose keys let reads run with Metal-View and keep Metal-Admin for the
// machine update alone.
type metalKeys struct {
	file, authType    string
	view, edit, admin string // files
}

// Environment variables read when the matching file flag is not set.
const (
	envMetalHMAC      = "METAL_API_HMAC"
	envMetalViewHMAC  = "METAL_API_VIEW_HMAC"
	envMetalEditHMAC  = "METAL_API_EDIT_HMAC"
	envMetalAdminHMAC = "METAL_API_ADMIN_HMAC"
)

// metalConfig builds the client configuration from the flags; getenv is os.Getenv.
func metalConfig(url string, k metalKeys, getenv func(string) string) (metal.Config, error) {
	cfg := metal.Config{URL: url, HMACAuthType: k.authType, Timeout: 30 * time.Second}
	var err error
	if cfg.HMACKey, err = keyFrom(k.file, envMetalHMAC, getenv); err != nil {
		return cfg, fmt.Errorf("--metal-api-hmac-file: %w", err)
	}
	for _, p := range []struct {
		flag, file, env string
		into            **metal.Credential
	}{
		{"--metal-api-view-hmac-file", k.view, envMetalViewHMAC, &cfg.View},
		{"--metal-api-edit-hmac-file", k.edit, envMetalEditHMAC, &cfg.Edit},
		{"--metal-api-admin-hmac-file", k.admin, envMetalAdminHMAC, &cfg.Admin},
	} {
		key, err := keyFrom(p.file, p.env, getenv)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", p.flag, err)
		}
		if key != "" {
			*p.into = &metal.Credential{HMACKey: key}
		}
	}
	return cfg, nil
}

// keyFrom reads the key from file when given, else from the environment variable.
func keyFrom(file, env string, getenv func(string) string) (string, error) {
	if file != "" {
		return metal.HMACKeyFromFile(file)
	}
	return getenv(env), nil
}
