//! Rendered images and thumbnails (PS3.18 section 8.3.5.1.3 and 9.5):
//! a frame decoded with dicom-pixeldata, windowed to 8 bits and encoded as
//! JPEG or PNG with the `image` crate, so a browser can show it.
//!
//! Decoding covers native (uncompressed) data, RLE Lossless and the JPEG
//! processes that dicom-pixeldata's Rust decoder reads. Other transfer
//! syntaxes (JPEG 2000, JPEG-LS) are rejected with a reason.

use std::io::Cursor;

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{
    ConvertOptions, DecodedPixelData, ModalityLutOption, PhotometricInterpretation, PixelDecoder,
    PlanarConfiguration, VoiLutFunction, VoiLutOption, WindowLevel, WindowLevelTransform,
};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, GrayImage, ImageEncoder, RgbImage};

/// Output format of a rendered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// Rendering parameters from the query (`window`, `viewport`, `quality`).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    pub format: Format,
    /// Window center, width and VOI LUT function; None uses the instance's
    /// first window, or the frame's value range when it has none.
    pub window: Option<(f64, f64, VoiLutFunction)>,
    /// Maximum width and height; the aspect ratio is kept.
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality from 1 to 100.
    pub quality: u8,
}

/// Renders frame `frame` (from 0) of `object` to an encoded image.
/// Errors are reasons meant for the client.
pub fn render(
    object: &DefaultDicomObject,
    frame: u32,
    options: &RenderOptions,
) -> Result<Vec<u8>, String> {
    let decoded = object
        .decode_pixel_data_frame(frame)
        .map_err(|error| format!("pixel data cannot be decoded: {error}"))?;
    let image = match decoded.samples_per_pixel() {
        1 => DynamicImage::ImageLuma8(grayscale(&decoded, options)?),
        3 => DynamicImage::ImageRgb8(color(&decoded)?),
        other => return Err(format!("{other} samples per pixel are not supported")),
    };

    let image = match options.viewport {
        Some((width, height)) => image.resize(width, height, image::imageops::FilterType::Triangle),
        None => image,
    };
    encode(&image, options)
}

fn grayscale(decoded: &DecodedPixelData, options: &RenderOptions) -> Result<GrayImage, String> {
    let convert = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    let values: Vec<f64> = decoded
        .to_vec_frame_with_options(0, &convert)
        .map_err(|error| format!("pixel values cannot be read: {error}"))?;

    let transform = window_transform(decoded, options, &values);
    let invert = *decoded.photometric_interpretation() == PhotometricInterpretation::Monochrome1;
    let pixels: Vec<u8> = values
        .iter()
        .map(|value| {
            let level = transform.apply(*value, 255.0).clamp(0.0, 255.0) as u8;
            if invert {
                255 - level
            } else {
                level
            }
        })
        .collect();
    GrayImage::from_raw(decoded.columns(), decoded.rows(), pixels)
        .ok_or_else(|| "pixel data is shorter than rows × columns".to_string())
}

/// Builds the requested window, else the instance's first, else one over the value range.
fn window_transform(
    decoded: &DecodedPixelData,
    options: &RenderOptions,
    values: &[f64],
) -> WindowLevelTransform {
    if let Some((center, width, function)) = options.window {
        return WindowLevelTransform::new(function, WindowLevel { center, width });
    }
    if let Ok(Some(windows)) = decoded.window() {
        if let Some(window) = windows.first() {
            return WindowLevelTransform::new(VoiLutFunction::Linear, *window);
        }
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = (max - min).max(1.0);
    let center = min + width / 2.0;
    WindowLevelTransform::new(VoiLutFunction::Linear, WindowLevel { center, width })
}

fn color(decoded: &DecodedPixelData) -> Result<RgbImage, String> {
    if decoded.bits_allocated() != 8 {
        return Err(format!(
            "color pixel data with {} bits allocated is not supported",
            decoded.bits_allocated()
        ));
    }
    let samples = decoded
        .frame_data(0)
        .map_err(|error| format!("pixel values cannot be read: {error}"))?;
    let mut pixels = match decoded.planar_configuration() {
        PlanarConfiguration::Standard => samples.to_vec(),
        PlanarConfiguration::PixelFirst => interleave(samples),
    };
    match decoded.photometric_interpretation() {
        PhotometricInterpretation::Rgb => {}
        PhotometricInterpretation::YbrFull => ybr_to_rgb(&mut pixels),
        other => {
            return Err(format!(
                "photometric interpretation {other} is not supported"
            ))
        }
    }
    RgbImage::from_raw(decoded.columns(), decoded.rows(), pixels)
        .ok_or_else(|| "pixel data is shorter than rows × columns × 3".to_string())
}

/// Turns planes `RRR…GGG…BBB…` into pixels `RGBRGB…`.
fn interleave(samples: &[u8]) -> Vec<u8> {
    let plane = samples.len() / 3;
    let mut pixels = Vec::with_capacity(plane * 3);
    for i in 0..plane {
        pixels.extend([samples[i], samples[plane + i], samples[2 * plane + i]]);
    }
    pixels
}

/// YBR_FULL to RGB with the equations of PS3.3 section C.7.6.3.1.2.
fn ybr_to_rgb(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(3) {
        let y = f64::from(pixel[0]);
        let cb = f64::from(pixel[1]) - 128.0;
        let cr = f64::from(pixel[2]) - 128.0;
        pixel[0] = (y + 1.402 * cr).clamp(0.0, 255.0) as u8;
        pixel[1] = (y - 0.344136 * cb - 0.714136 * cr).clamp(0.0, 255.0) as u8;
        pixel[2] = (y + 1.772 * cb).clamp(0.0, 255.0) as u8;
    }
}

fn encode(image: &DynamicImage, options: &RenderOptions) -> Result<Vec<u8>, String> {
    let mut bytes = Cursor::new(Vec::new());
    let (width, height) = (image.width(), image.height());
    let color = image.color().into();
    let result = match options.format {
        Format::Jpeg => JpegEncoder::new_with_quality(&mut bytes, options.quality).write_image(
            image.as_bytes(),
            width,
            height,
            color,
        ),
        Format::Png => {
            PngEncoder::new(&mut bytes).write_image(image.as_bytes(), width, height, color)
        }
    };
    result.map_err(|error| format!("image cannot be encoded: {error}"))?;
    Ok(bytes.into_inner())
}

/// Parses `window=center,width[,function]`; the function is LINEAR,
/// LINEAR_EXACT or SIGMOID (PS3.18 section 8.3.5.1.3).
pub fn parse_window(text: &str) -> Result<(f64, f64, VoiLutFunction), String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let number = |part: Option<&&str>| part.and_then(|p| p.parse::<f64>().ok());
    let (Some(center), Some(width)) = (number(parts.first()), number(parts.get(1))) else {
        return Err("expected center,width[,function] with numbers".to_string());
    };
    if width < 1.0 || parts.len() > 3 {
        return Err("expected center,width[,function] with a width of at least 1".to_string());
    }
    let function = match parts.get(2).map(|f| f.to_ascii_uppercase()) {
        None => VoiLutFunction::Linear,
        Some(name) => match name.as_str() {
            "LINEAR" => VoiLutFunction::Linear,
            "LINEAR_EXACT" => VoiLutFunction::LinearExact,
            "SIGMOID" => VoiLutFunction::Sigmoid,
            _ => {
                return Err(format!(
                    "unknown VOI LUT function {name}; use LINEAR, LINEAR_EXACT or SIGMOID"
                ))
            }
        },
    };
    Ok((center, width, function))
}

/// Largest viewport side in pixels. The resized image is allocated before
/// encoding, so an unbounded viewport lets one request exhaust the node's
/// memory: 100000x100000 needs tens of gigabytes.
pub const MAX_VIEWPORT_SIDE: u32 = 4096;

/// Parses `viewport=width,height`, each from 1 to [`MAX_VIEWPORT_SIDE`].
pub fn parse_viewport(text: &str) -> Result<(u32, u32), String> {
    let sizes: Vec<Option<u32>> = text.split(',').map(|p| p.trim().parse().ok()).collect();
    let side = 1..=MAX_VIEWPORT_SIDE;
    match sizes.as_slice() {
        [Some(width), Some(height)] if side.contains(width) && side.contains(height) => {
            Ok((*width, *height))
        }
        _ => Err(format!(
            "expected width,height as integers from 1 to {MAX_VIEWPORT_SIDE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_parses_with_function() {
        let (center, width, function) = parse_window("40,400,SIGMOID").expect("parses");

        assert_eq!(center, 40.0);
        assert_eq!(width, 400.0);
        assert_eq!(function, VoiLutFunction::Sigmoid);
    }

    #[test]
    fn window_without_width_is_rejected() {
        assert!(parse_window("40").is_err());
        assert!(parse_window("40,0").is_err());
        assert!(parse_window("40,400,CUBIC").is_err());
    }

    #[test]
    fn viewport_needs_two_positive_sizes() {
        assert_eq!(parse_viewport("64,32"), Ok((64, 32)));
        assert!(parse_viewport("64").is_err());
        assert!(parse_viewport("0,10").is_err());
    }

    #[test]
    fn viewport_larger_than_limit_is_rejected() {
        assert_eq!(parse_viewport("4096,4096"), Ok((4096, 4096)));
        assert!(parse_viewport("100000,100000").is_err());
        assert!(parse_viewport("64,4097").is_err());
    }

    #[test]
    fn planes_are_interleaved() {
        assert_eq!(
            interleave(&[1, 2, 10, 20, 100, 200]),
            vec![1, 10, 100, 2, 20, 200]
        );
    }

    #[test]
    fn ybr_gray_stays_gray() {
        let mut pixels = [128, 128, 128];

        ybr_to_rgb(&mut pixels);
        assert_eq!(pixels, [128, 128, 128]);
    }
}
