//go:build unix && !linux

package main

import "syscall"

// procAttr puts the web app in its own process group (so a terminal's Ctrl-C
// reaches only this program, which stops the web app in order).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
