"""Run file, workflow, reports and the command line."""

from .cli import (  # noqa: F401
    PROG,
    CLIError,
    build_parser,
    entry_point,
    main,
)
from .config import (  # noqa: F401
    _SECTIONS,
    ClustersConfig,
    ConfigError,
    DynamicsConfig,
    FramesConfig,
    LibraryConfig,
    PairCutoff,
    PredictConfig,
    ReportConfig,
    RunConfig,
    RunSettings,
    SaxsConfig,
    flatten,
)
from .report import (  # noqa: F401
    FIGURES,
    MAX_OBSERVED_TRACES,
    MAX_PREDICTED_TRACES,
    make_figures,
    table_rows,
    write_html_report,
    write_pptx_report,
)
from .runs import (  # noqa: F401
    DATASET_FORMAT,
    DATASET_VERSION,
    RunResult,
    StepRecord,
    compare_runs,
    environment_info,
    list_runs,
    load_run,
)
from .workflow import (  # noqa: F401
    STEPS,
    StageUnavailable,
    run,
    write_json,
)
