"""`batch-share serve`: the CLI's jobs behind a local page (needs the `web` extra).

    app = create_app(ServeConfig(port=8770, work_dir=Path(mkdtemp())))

The page is a thin skin over `batch_share.pipeline`, as the CLI is; see `app.py` for the
routes and `security.py` for what keeps other pages and processes out.
"""

from batch_share.web.app import EmulatorInfo, ServeConfig, create_app

__all__ = ["EmulatorInfo", "ServeConfig", "create_app"]
