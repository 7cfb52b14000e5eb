"""JupyterHub settings for a workshop of this course: shared read-only caches, a folder per learner.

Used three ways (deploy/README.md):

* The Littlest JupyterHub (TLJH): copy this file to ``/opt/tljh/config/jupyterhub_config.d/`` and
  run ``tljh-config reload``; TLJH keeps its own authenticator and spawner (systemd, with the limits
  below enforced).
* One server with plain JupyterHub: ``jupyterhub -f deploy/jupyterhub_config.py`` plus the
  authenticator and spawner of your site.
* The course's load test (tests/test_hub.py) loads it with ``load_subconfig`` and adds only what a
  test needs (127.0.0.1, a dummy authenticator, one process per learner).

Everything course-specific comes from environment variables of the Hub, with defaults:

``TL_COURSE_DIR``   the course checkout (default: the repository this file is in, else
                    ``/srv/transfer-learning-course/course``)
``TL_LEARNER_BIN``  the ``bin/`` of the environment the course is installed in (default: TLJH's user
                    environment if there is one, else the Hub's own)
``TL_SHARED_DIR``   the instructor's caches, built once with ``TL_DATA_DIR=$TL_SHARED_DIR/data
                    TL_ARTIFACTS_DIR=$TL_SHARED_DIR/artifacts python data_scripts/prepare.py --profile quick``
                    (default ``/srv/transfer-learning-course/shared``); learners only read them
``TL_NOTEBOOKS``    the notebooks each learner gets a copy of (default: the course's; for a workshop
                    without solutions, ``make student`` and point this at ``build/student``)
``TL_LEARNER_CPUS`` / ``TL_LEARNER_MEMORY``  limits per learner (default 1 CPU, 3G; enforced by
                    spawners that support them, e.g. TLJH's systemd spawner and Kubernetes)
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - JupyterHub's config loader defines get_config

HERE = Path(__file__).resolve().parent
IN_CHECKOUT = (HERE / "learner-start").exists()  # else a copy, e.g. in TLJH's jupyterhub_config.d/
COURSE = Path(os.environ.get("TL_COURSE_DIR")
              or (HERE.parent if IN_CHECKOUT else "/srv/transfer-learning-course/course"))
SHARED = Path(os.environ.get("TL_SHARED_DIR") or "/srv/transfer-learning-course/shared")
NOTEBOOKS = Path(os.environ.get("TL_NOTEBOOKS") or COURSE / "notebooks")
LEARNER_FOLDER = "transfer-learning-course"  # in each learner's home: their notebooks and build/
# The environment the course is installed in (jupyterhub-singleuser and the kernel run there):
# TLJH's user environment when there is one, else the Hub's own (one virtual environment for both).
TLJH_USER_BIN = Path("/opt/tljh/user/bin")
BIN = Path(os.environ.get("TL_LEARNER_BIN")
           or (TLJH_USER_BIN if (TLJH_USER_BIN / "jupyterhub-singleuser").exists() else Path(sys.executable).parent))

# Every learner reads the same prepared data and networks and never writes them: a cache miss is
# a clear error naming the prepare command (helpers.data.cache), not 30 learners rebuilding it.
# One thread per learner: on a shared server, several threads each only fight over the cores.
c.Spawner.environment = {
    "TL_PROFILE": "quick",
    "TL_DATA_DIR": str(SHARED / "data"),
    "TL_ARTIFACTS_DIR": str(SHARED / "artifacts"),
    "TL_CACHE_READ_ONLY": "1",
    "TL_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TL_COURSE_NOTEBOOKS": str(NOTEBOOKS),
    "TL_LEARNER_DIR": f"~/{LEARNER_FOLDER}",
}
# deploy/learner-start copies the notebooks into the learner's home once (their edits are theirs)
# and sets TL_BUILD_DIR to ~/transfer-learning-course/build: results and executed notebooks.
c.Spawner.cmd = [str(COURSE / "deploy" / "learner-start"), str(BIN / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = f"~/{LEARNER_FOLDER}"
c.Spawner.default_url = "/lab/tree/notebooks/00_start_here.ipynb"
c.Spawner.cpu_limit = float(os.environ.get("TL_LEARNER_CPUS") or 1)
c.Spawner.mem_limit = os.environ.get("TL_LEARNER_MEMORY") or "3G"
c.Spawner.start_timeout = 120  # seconds: a cold server imports torch once
c.Spawner.http_timeout = 120
# Learners who leave their kernel running hold memory: the idle culler is a separate service
# (jupyterhub-idle-culler); TLJH runs it by default. The single-user servers stop idle kernels:
c.Spawner.args = ["--MappingKernelManager.cull_idle_timeout=3600",
                  "--MappingKernelManager.cull_interval=300"]
