package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadInstallation(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What the chart renders from its values (an empty block is "{}").
	inst, err := LoadInstallation(write("ok.yaml", `controller:
  name: Example Shop GmbH
  email: privacy@example.com
supervisoryAuthorities:
  GDPR:
    name: BlnBDI
    url: https://www.datenschutz-berlin.de
`))
	if err != nil || inst.Controller.Name != "Example Shop GmbH" || inst.SupervisoryAuthorities["GDPR"].Name != "BlnBDI" || inst.DataProtectionOfficer != nil {
		t.Fatalf("%+v %v", inst, err)
	}
	if inst, err := LoadInstallation(write("empty.yaml", "{}\n")); err != nil || inst.Controller != nil {
		t.Fatalf("the chart's default: %+v %v", inst, err)
	}
	for name, content := range map[string]string{
		"typo.yaml":    "supervisoryAuthority:\n  GDPR: {name: x}\n",
		"noname.yaml":  "controller: {address: somewhere}\n",
		"garbage.yaml": "controller: [",
	} {
		if _, err := LoadInstallation(write(name, content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadInstallation(filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "reading") {
		t.Errorf("absent file: %v", err)
	}
}
