"""scikit-learn autologging: a grid search over a pipeline, recorded as a parent run and
one child run per candidate. Run inside a git repository: ``python sklearn_autolog.py``."""

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vtrack

vtrack.sklearn.autolog()  # the one line to add

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
search = GridSearchCV(
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
    {"logisticregression__C": [0.01, 0.1, 1.0]},
    cv=3,
)
search.fit(X_train, y_train)
run = vtrack.last_active_run()
print(
    f"best C={search.best_params_['logisticregression__C']} test accuracy={search.score(X_test, y_test):.3f}"
)
print(f"RUN {run.info.run_id}")
