#!/usr/bin/env bash
# One entry point for people and CI: `./dev.sh run` serves the dashboard, `./dev.sh test` runs the suite.
# Both install what they need into ./.venv first (and only again when the requirements change).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${LAYERLAB_VENV:-.venv}

need_venv() {
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "Python's venv module is missing: on Debian/Ubuntu run 'sudo apt-get install python3-venv'." >&2
    exit 1
  fi
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
}

install() {  # install $1 (a requirements file) unless this exact file is already installed
  local stamp="$VENV/.installed-$(basename "$1")"
  if [ ! -f "$stamp" ] || ! cmp -s "$1" "$stamp"; then
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$1"
    cp "$1" "$stamp"
  fi
}

case "${1:-run}" in
  run)
    need_venv
    install requirements.txt
    # Listens on this machine only, unless LAYERLAB_ADDRESS says otherwise (0.0.0.0: every interface).
    exec "$VENV/bin/python" -m streamlit run dashboard/app.py --server.port "${PORT:-8501}" \
      --server.address "${LAYERLAB_ADDRESS:-localhost}"
    ;;
  test)
    need_venv
    install requirements.txt
    install requirements-dev.txt
    install requirements-ray.txt  # the Ray tests start a local cluster; without Ray they skip
    if [ ! -x /usr/bin/chromium ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium: browser tests will skip" >&2
      else
        echo "Debian's chromium is not installed (sudo apt-get install chromium): browser tests will skip." >&2
      fi
    fi
    shift || true
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh run | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
