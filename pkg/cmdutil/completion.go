package cmdutil

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// CompleteAccountIDs completes account ids from the config (no network, no server).
func CompleteAccountIDs(f *Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, a := range cfg.Accounts {
			if strings.HasPrefix(a.ID, toComplete) {
				out = append(out, a.ID+"\t"+a.Type+" "+a.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteSessionKeys completes sticky-session keys from the state database.
func CompleteSessionKeys(f *Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		db, err := f.DB()
		if err != nil || db == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ss, err := db.Sessions(context.Background(), time.Now())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, s := range ss {
			if strings.HasPrefix(s.Key, toComplete) {
				out = append(out, s.Key+"\t"+s.AccountID)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
