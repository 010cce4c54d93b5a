package cmdutil

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/store"
)

// CompleteAccountIDs completes account ids from the config file (the one
// --config names or the search finds). It reads only the config: no network,
// no database, no server. Ids already on the command line are not offered
// again. Use it as ValidArgsFunction or with RegisterFlagCompletionFunc.
func CompleteAccountIDs(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil || cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, a := range cfg.Accounts {
			if !strings.HasPrefix(a.ID, toComplete) || slices.Contains(args, a.ID) {
				continue
			}
			desc := a.Type
			if a.Name != "" && a.Name != a.ID {
				desc += ", " + a.Name
			}
			if !a.Enabled {
				desc += " (disabled)"
			}
			out = append(out, cobra.CompletionWithDesc(a.ID, desc))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteSessionKeys completes the keys of live sticky sessions from the
// database at server.database_path, opened read-only (a missing database
// offers nothing and creates nothing).
func CompleteSessionKeys(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil || cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		db, err := store.OpenReadOnly(cfg.Server.DatabasePath)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer db.Close()
		parent := cmd.Context()
		if parent == nil {
			parent = context.Background()
		}
		ctx, cancel := context.WithTimeout(parent, 2*time.Second)
		defer cancel()
		now := time.Now()
		sessions, err := db.Sessions(ctx, now)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range sessions {
			if !strings.HasPrefix(s.Key, toComplete) || slices.Contains(args, s.Key) {
				continue
			}
			left := s.ExpiresAt.Sub(now).Round(time.Minute)
			out = append(out, cobra.CompletionWithDesc(s.Key, fmt.Sprintf("%s, expires in %s", s.AccountID, left)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
