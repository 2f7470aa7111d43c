// Package webhook holds the admission webhooks for the firewall and policy APIs.
package webhook
