// Package controller holds the manager's controllers, one package per kind.
package controller
