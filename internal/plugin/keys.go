package plugin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/receipt"
)

func newKeys(o *options, stdout io.Writer) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the operator's receipt signing keys",
		Args:  noSubcommand,
		RunE:  func(*cobra.Command, []string) error { return nil },
	}
	keys.AddCommand(newKeysList(o, stdout), newKeysRotate(o, stdout))
	return keys
}

func newKeysList(o *options, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every published receipt key with the period it signed in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := o.client()
			if err != nil {
				return err
			}
			ks, err := publishedKeys(cmd.Context(), c, o.operatorNamespace)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY ID\tNOT BEFORE\tNOT AFTER")
			for _, k := range ks {
				end := "(current)"
				if k.NotAfter != nil {
					end = k.NotAfter.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", k.KeyID, k.NotBefore.UTC().Format(time.RFC3339), end)
			}
			return w.Flush()
		},
	}
}

func publishedKeys(ctx context.Context, c client.Client, namespace string) (receipt.KeySet, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: receipt.PublicKeyConfigMapName}, &cm); err != nil {
		return nil, fmt.Errorf("the operator's public keys, ConfigMap %s/%s (is --operator-namespace right?): %w", namespace, receipt.PublicKeyConfigMapName, err)
	}
	return receipt.ParseKeySet([]byte(cm.Data[receipt.KeySetKey]))
}

func newKeysRotate(o *options, stdout io.Writer) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "rotate [--private-key FILE]",
		Short: "Replace the receipt signing key; receipts signed before keep verifying",
		Long: `Writes a new Ed25519 signing key (generated here, or your own PKCS#8 PEM key with
--private-key) into Secret dsr-operator-receipt-signing-key in --operator-namespace and publishes
its public key in ConfigMap dsr-operator-receipt-public-key. The previous public key stays in the
ConfigMap's key set (keys.json) with the period it signed in, so every receipt signed before still
verifies, online and offline. The private key is never printed.

The running operator re-reads the key Secret every 30 seconds and signs with the new key from
then on: no restart. Receipts it signs with the old key in between verify too (the old key's
validity has an hour of grace). Writing a key into the Secret by hand works the same way: the
operator publishes its public key before it signs with it.
Needs get and update on that Secret and ConfigMap (a cluster administrator).`,
		Example: `  kubectl dsr keys rotate
  kubectl dsr keys rotate --private-key our-hsm-export.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rotateKey(cmd.Context(), o, keyFile, stdout)
		},
	}
	cmd.Flags().StringVar(&keyFile, "private-key", "", "a PKCS#8 PEM Ed25519 key of your own; default: a new random key")
	return cmd
}

func rotateKey(ctx context.Context, o *options, keyFile string, stdout io.Writer) error {
	var priv ed25519.PrivateKey
	if keyFile != "" {
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("reading the private key: %v", err)}
		}
		if priv, err = receipt.ParsePrivateKey(data); err != nil {
			return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("the private key %s: %v", keyFile, err)}
		}
	} else {
		var err error
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return err
		}
	}
	keyPEM, err := receipt.PrivateKeyPEM(priv)
	if err != nil {
		return err
	}
	c, _, err := o.client()
	if err != nil {
		return err
	}
	ns := o.operatorNamespace
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: receipt.KeySecretName}, &secret); err != nil {
		return fmt.Errorf("the signing key Secret %s/%s (is --operator-namespace right?): %w", ns, receipt.KeySecretName, err)
	}
	oldID := "(unreadable)"
	if old, err := receipt.ParsePrivateKey(secret.Data[receipt.KeyPEM]); err == nil {
		oldID = receipt.NewSigner(old).KeyID()
	}
	signer := receipt.NewSigner(priv)
	if signer.KeyID() == oldID {
		return &ExitError{Code: exitFailed, Msg: fmt.Sprintf("key %s is already the signing key", oldID)}
	}
	// Publish first: if writing the Secret then fails, an extra published key is harmless, while a
	// signing key whose public half is unpublished would make receipts nobody can verify.
	if err := receipt.Publish(ctx, c, c, ns, signer); err != nil {
		return err
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[receipt.KeyPEM] = keyPEM
	if err := c.Update(ctx, &secret); err != nil {
		return fmt.Errorf("writing the new key into Secret %s/%s: %w", ns, receipt.KeySecretName, err)
	}
	fmt.Fprintf(stdout, "receipt signing key rotated: %s -> %s; the operator signs with it within %s, no restart needed\n", oldID, signer.KeyID(), receipt.DefaultReloadInterval)
	return nil
}
