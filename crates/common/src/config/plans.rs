//! The catalogue and the message prices as configured: `PLANS` and `RETIRED_PLANS`
//! (`id:stripe_price_id:credits_per_period`, comma-separated), or the one-plan form of
//! `STRIPE_PRICE_ID`, `PLAN_CREDITS`, `PLAN_NAME` and `STRIPE_RETIRED_PRICE_IDS`; and
//! `CREDIT_PACKS` (`id:stripe_price_id:credits`, comma-separated); and `MESSAGE_PRICES`
//! (`model:credits`, comma-separated). Errors name the variable, never a value.

use super::{ConfigError, Vars};
use crate::domain::packs::{Pack, Packs};
use crate::domain::plans::{Catalogue, CatalogueError, MessagePrices, Plan, PlanId};

/// Plan name of the one-plan form when `PLAN_NAME` is unset.
pub const DEFAULT_PLAN_NAME: &str = "pro";

/// The catalogue configured through `vars`: `PLANS` when set, else the one-plan form.
pub(super) fn catalogue<L: Fn(&str) -> Option<String>>(
    vars: &Vars<L>,
) -> Result<Catalogue, ConfigError> {
    let Some(plans) = vars.get("PLANS") else {
        return one_plan(vars);
    };
    let sold = plan_list("PLANS", &plans)?;
    let retired = match vars.get("RETIRED_PLANS") {
        Some(list) => plan_list("RETIRED_PLANS", &list)?,
        None => Vec::new(),
    };
    Catalogue::new(sold, retired).map_err(|err| refused("PLANS", err))
}

/// The catalogue of today's one-plan settings.
fn one_plan<L: Fn(&str) -> Option<String>>(vars: &Vars<L>) -> Result<Catalogue, ConfigError> {
    let credits = vars.required_integer(
        "PLAN_CREDITS",
        1..=Catalogue::MAX_CREDITS,
        "must be an integer between 1 and 1000000",
    )?;
    let name = vars
        .get("PLAN_NAME")
        .unwrap_or_else(|| DEFAULT_PLAN_NAME.to_owned());
    let id = PlanId::parse(&name).map_err(|_| ConfigError {
        variable: "PLAN_NAME",
        problem: "must be 1 to 32 characters of a-z, 0-9, _ and -",
    })?;
    let plan = |price_id: String| Plan {
        id: id.clone(),
        price_id,
        credits,
        sold: true,
    };
    let retired = vars
        .get("STRIPE_RETIRED_PRICE_IDS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|price| plan(price.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let sold = vec![plan(vars.required("STRIPE_PRICE_ID")?)];
    Catalogue::new(sold, retired).map_err(|err| refused("STRIPE_RETIRED_PRICE_IDS", err))
}

/// The packs of `CREDIT_PACKS` (none when unset), beside the plans of `catalogue`: a price is a
/// plan's or a pack's, never both.
pub(super) fn packs<L: Fn(&str) -> Option<String>>(
    vars: &Vars<L>,
    catalogue: &Catalogue,
) -> Result<Packs, ConfigError> {
    let Some(list) = vars.get("CREDIT_PACKS") else {
        return Ok(Packs::default());
    };
    let packs = plan_list("CREDIT_PACKS", &list)?
        .into_iter()
        .map(|plan| Pack {
            id: plan.id,
            price_id: plan.price_id,
            credits: plan.credits,
        })
        .collect();
    Packs::new(packs, catalogue).map_err(|err| match err {
        CatalogueError::DuplicatePrice => ConfigError {
            variable: "CREDIT_PACKS",
            problem: "lists a Stripe price twice, or a price of a plan",
        },
        err => refused("CREDIT_PACKS", err),
    })
}

/// The entries of `list` (`id:price:credits`, comma-separated), read from `variable`, as plans.
fn plan_list(variable: &'static str, list: &str) -> Result<Vec<Plan>, ConfigError> {
    let malformed = ConfigError {
        variable,
        problem: "must be comma-separated id:stripe_price_id:credits entries, ids of a-z, 0-9, _ and - (at most 32), credits 1 to 1000000",
    };
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut parts = entry.split(':').map(str::trim);
            let (Some(id), Some(price), Some(credits), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed.clone());
            };
            let id = PlanId::parse(id).map_err(|_| malformed.clone())?;
            let credits = credits.parse().map_err(|_| malformed.clone())?;
            if !price.starts_with("price_") || price.len() > 255 {
                return Err(malformed.clone());
            }
            Ok(Plan {
                id,
                price_id: price.to_owned(),
                credits,
                sold: true,
            })
        })
        .collect()
}

/// The error naming `variable` for a catalogue refused as `err`.
fn refused(variable: &'static str, err: CatalogueError) -> ConfigError {
    ConfigError {
        variable,
        problem: match err {
            CatalogueError::Empty => "lists no plan",
            CatalogueError::DuplicateId => "lists a plan id twice",
            CatalogueError::DuplicatePrice => "lists a Stripe price twice",
            CatalogueError::Credits => "has credits outside 1 to 1000000",
        },
    }
}

/// The message prices of `MESSAGE_PRICES` (1 credit a message when unset).
pub(super) fn message_prices<L: Fn(&str) -> Option<String>>(
    vars: &Vars<L>,
) -> Result<MessagePrices, ConfigError> {
    let refused = ConfigError {
        variable: "MESSAGE_PRICES",
        problem: "must be comma-separated model:credits entries, each model once, credits 1 to 10000",
    };
    let Some(list) = vars.get("MESSAGE_PRICES") else {
        return Ok(MessagePrices::default());
    };
    let entries = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            // The last colon: model names may hold one (`llama3:8b`).
            let (model, credits) = entry.rsplit_once(':').ok_or(refused.clone())?;
            let credits = credits.trim().parse().map_err(|_| refused.clone())?;
            Ok((model.trim().to_owned(), credits))
        })
        .collect::<Result<Vec<(String, i64)>, ConfigError>>()?;
    MessagePrices::new(entries).map_err(|_| refused)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Vars(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn plans_are_read_in_order_with_the_retired_ones() {
        let catalogue = catalogue(&vars(&[
            ("PLANS", "plus:price_1Q:1000, pro:price_1R:5000"),
            ("RETIRED_PLANS", "pro:price_0R:4000"),
            ("STRIPE_PRICE_ID", "price_ignored"),
        ]))
        .unwrap();
        let sold: Vec<(&str, &str, i64)> = catalogue
            .sold()
            .map(|p| (p.id.as_str(), p.price_id.as_str(), p.credits))
            .collect();
        assert_eq!(
            sold,
            [("plus", "price_1Q", 1000), ("pro", "price_1R", 5000)]
        );
        assert!(!catalogue.for_price("price_0R").unwrap().sold);
        assert_eq!(catalogue.for_price("price_ignored"), None);
    }

    #[test]
    fn without_plans_the_one_plan_settings_are_the_catalogue() {
        let catalogue = catalogue(&vars(&[
            ("STRIPE_PRICE_ID", "price_1"),
            ("PLAN_CREDITS", "1000"),
            ("STRIPE_RETIRED_PRICE_IDS", "price_0, price_00"),
        ]))
        .unwrap();
        let plan = catalogue.default_plan();
        assert_eq!((plan.id.as_str(), plan.credits), ("pro", 1000));
        assert_eq!(catalogue.for_price("price_00").unwrap().id.as_str(), "pro");
    }

    #[test]
    fn bad_catalogues_name_their_variable_and_never_the_value() {
        for (vars, variable) in [
            (vec![("PLANS", "plus:price_secret1")], "PLANS"),
            (vec![("PLANS", "Plus:price_secret1:10")], "PLANS"),
            (vec![("PLANS", "plus:secret1:10")], "PLANS"),
            (vec![("PLANS", "plus:price_secret1:0")], "PLANS"),
            (
                vec![("PLANS", "a:price_secret1:1,a:price_secret2:2")],
                "PLANS",
            ),
            (
                vec![
                    ("PLANS", "a:price_secret1:1"),
                    ("RETIRED_PLANS", "b:price_secret1:1"),
                ],
                "PLANS",
            ),
            (
                vec![
                    ("PLANS", "a:price_secret1:1"),
                    ("RETIRED_PLANS", "b:price_secret2"),
                ],
                "RETIRED_PLANS",
            ),
            (vec![("PLANS", " , ")], "PLANS"),
            (
                vec![
                    ("STRIPE_PRICE_ID", "price_secret1"),
                    ("PLAN_CREDITS", "1000001"),
                ],
                "PLAN_CREDITS",
            ),
            (
                vec![
                    ("STRIPE_PRICE_ID", "price_secret1"),
                    ("PLAN_CREDITS", "5"),
                    ("PLAN_NAME", "Secret Plan"),
                ],
                "PLAN_NAME",
            ),
        ] {
            let err = catalogue(&super::Vars(|name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }))
            .unwrap_err();
            assert_eq!(err.variable, variable, "{vars:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn packs_are_read_in_order_and_refused_naming_their_variable_only() {
        let plans = ("PLANS", "plus:price_1Q:1000");
        let pairs = [
            plans,
            ("CREDIT_PACKS", "small:price_p1:500, large:price_p2:3000"),
        ];
        let both = vars(&pairs);
        let read = packs(&both, &catalogue(&both).unwrap()).unwrap();
        let sold: Vec<(&str, i64)> = read.sold().map(|p| (p.id.as_str(), p.credits)).collect();
        assert_eq!(sold, [("small", 500), ("large", 3000)]);
        let alone = [plans];
        let none = vars(&alone);
        let unset = packs(&none, &catalogue(&none).unwrap()).unwrap();
        assert_eq!(unset.sold().count(), 0);
        for list in [
            "small:price_secret1",
            "small:price_secret1:0",
            "small:price_secret1:1000001",
            "small:price_secret1:5,small:price_secret2:6",
            "small:price_secret1:5,large:price_secret1:6",
            "small:price_1Q:5",
            "Small:price_secret1:5",
        ] {
            let pairs = [plans, ("CREDIT_PACKS", list)];
            let bad = vars(&pairs);
            let err = packs(&bad, &catalogue(&bad).unwrap()).unwrap_err();
            assert_eq!(err.variable, "CREDIT_PACKS", "{list}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn message_prices_are_validated() {
        let prices = message_prices(&vars(&[(
            "MESSAGE_PRICES",
            "large:5, llama3:8b:2, default:1",
        )]))
        .unwrap();
        assert_eq!(prices.price_of("llama3:8b"), 2);
        assert_eq!(prices.price_of("large"), 5);
        for bad in ["large", "large:0", "large:10001", "a:1,a:2", "large:x"] {
            let err = message_prices(&vars(&[("MESSAGE_PRICES", bad)])).unwrap_err();
            assert_eq!(err.variable, "MESSAGE_PRICES");
        }
    }
}
